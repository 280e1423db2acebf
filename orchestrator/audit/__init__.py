"""The audit store: interaction records in PostgreSQL, exactly once, chained, queryable, erasable.

`sink` feeds it from the `interactions` topic; `query` reads it (filters, timeline, export);
`chain` and `verify` make tampering evident; `personal` and `erasure` crypto-shred a
customer's personal fields. `db` holds connections and the schema's migrations.
"""

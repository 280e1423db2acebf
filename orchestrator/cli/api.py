"""`orchestrator api` and `orchestrator keys create|list|revoke`."""

from __future__ import annotations

import argparse

from orchestrator.cli.operator import run_converting
from orchestrator.control.keys import ApiKey, KeyStore
from orchestrator.control.keyservice import KeyService
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.reach import check_redis
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings, load_settings

__all__ = ["api", "keys"]


def api(args: argparse.Namespace) -> int:
    """Serve the API on ORCHESTRATOR_API_HOST:ORCHESTRATOR_API_PORT until stopped."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from orchestrator.api.app import create_app  # noqa: PLC0415 - keeps other commands light

    settings = load_settings()
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level=args.log_level,
            access_log=args.log_level == "debug",
        )
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise ConfigurationError(
            f"cannot serve the API on {settings.api_host}:{settings.api_port}: set "
            "ORCHESTRATOR_API_HOST / ORCHESTRATOR_API_PORT to a free address"
        ) from exc
    return 0


async def _keys(settings: Settings, args: argparse.Namespace) -> list[ApiKey] | tuple[ApiKey, str]:
    await check_redis(settings)
    redis = connect_redis(settings)
    try:
        store = KeyStore(redis, RedisKeys(settings.redis_prefix))
        service = KeyService(settings, store, args.operator or settings.operator)
        if args.action == "create":
            return await service.create(args.role, args.name, args.grant or ())
        if args.action == "revoke":
            return [await service.revoke(args.key_id)]
        return await store.list()
    finally:
        await redis.aclose()


def keys(args: argparse.Namespace) -> int:
    """Create (secret on the last line), list or revoke API keys."""
    if args.action == "create" and not (args.role and args.name):
        print("`keys create` needs --role ROLE and --name NAME")
        return 2
    if args.action == "revoke" and not args.key_id:
        print("`keys revoke` needs the key id: orchestrator keys revoke ID")
        return 2
    settings = load_settings()
    result = run_converting(settings, _keys(settings, args))
    if isinstance(result, tuple):
        key, secret = result
        grants = f" with grants {', '.join(key.grants)}" if key.grants else ""
        print(
            f"created {key.role} key {key.key_id} ({key.name}){grants}; "
            "the secret is shown only once:"
        )
        print(secret)
        return 0
    if args.action == "revoke":
        print(f"revoked {result[0].key_id} ({result[0].name}) at {result[0].revoked_at}")
        return 0
    print(f"{'ID':12}  {'ROLE':9}  {'CREATED':24}  {'REVOKED':24}  NAME")
    for key in result:
        print(
            f"{key.key_id:12}  {key.role:9}  {key.created_at:24}  "
            f"{key.revoked_at or '-':24}  {key.name}"
            + (f" [{', '.join(key.grants)}]" if key.grants else "")
        )
    return 0

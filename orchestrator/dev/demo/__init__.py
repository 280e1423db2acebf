"""The main-job demo: synthetic customers living through the journey library on real infra."""

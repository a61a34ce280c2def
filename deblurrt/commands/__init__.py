"""CLI subcommands whose logic lives in a stage package; each module is thin glue."""

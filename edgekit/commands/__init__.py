"""One module per CLI subcommand: HELP, add_arguments(parser), run(args). Keep the top of each light."""

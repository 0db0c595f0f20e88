"""`novaflow`: the operator's command line (typer + rich). `ops` talks to Temporal about running
operations; `server` talks to the API about servers."""

"""The zkml command line (imported as ``zkml_cli``): thin Typer layer over :mod:`zkml`."""

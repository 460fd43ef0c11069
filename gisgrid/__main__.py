from gisgrid.cli import run

run()

from loyalty_runtime.cli import main
from points.app import build
from points.cli import COMMANDS

raise SystemExit(main(build, commands=COMMANDS))

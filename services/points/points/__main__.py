from loyalty_runtime.cli import main
from points.app import build

raise SystemExit(main(build))

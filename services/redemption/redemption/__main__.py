from loyalty_runtime.cli import main
from redemption.app import build

raise SystemExit(main(build))

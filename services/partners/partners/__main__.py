from loyalty_runtime.cli import main
from partners.app import build

raise SystemExit(main(build))

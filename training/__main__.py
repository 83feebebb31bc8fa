"""Entry point: python -m training --help"""

from training.train import main

raise SystemExit(main())

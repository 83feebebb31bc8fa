"""Regenerate the configurations, the rule file and the docs' blocks (generated.py).

    python -m deploy.prometheus --write
"""

from deploy.prometheus.generated import main

raise SystemExit(main())

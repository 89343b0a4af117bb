import sys

from cluster.cli._main import main

sys.exit(main())

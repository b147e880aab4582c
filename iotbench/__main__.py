import sys

from iotbench.cli import main

sys.exit(main())

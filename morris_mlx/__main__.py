import sys

from morris_mlx.cli import main

sys.exit(main())

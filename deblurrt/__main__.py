from deblurrt.cli import main

raise SystemExit(main())

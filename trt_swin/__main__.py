from trt_swin.cli import main

raise SystemExit(main())

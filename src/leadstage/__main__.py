from leadstage.cli.app import main

main()

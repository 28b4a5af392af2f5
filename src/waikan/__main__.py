from waikan.cli import main

main()

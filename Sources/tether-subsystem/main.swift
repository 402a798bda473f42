import TetherHostMain

HostCommand.main()

import TetherHostMain
import TetherIO

StreamingHeap.configure()
HostCommand.main()

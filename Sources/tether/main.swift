import TetherCLI
import TetherIO

StreamingHeap.configure()
await TetherCommand.runMain()

import TetherCLI

await TetherCommand.runMain()

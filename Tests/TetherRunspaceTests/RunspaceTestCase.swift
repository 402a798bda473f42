import XCTest

/// One fresh runspace per test, stopped (and its directories removed) afterwards.
class RunspaceTestCase: XCTestCase {
    var runspace: RunspaceProcess!

    /// Extra `tether-subsystem runspace` arguments for this test class.
    var runspaceArguments: [String] { [] }

    override func setUpWithError() throws {
        runspace = try RunspaceProcess(arguments: runspaceArguments)
    }

    override func tearDown() {
        runspace?.stop()
        runspace = nil
    }
}

import ArgumentParser

/// `tether job …`: jobs that run in a session beside its foreground commands.
struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "List, receive, wait for, stop and remove jobs started with `tether invoke --as-job`.",
        discussion: prose("""
        A job runs a script in a copy of a session's shell — its variables, functions,
        aliases and directory as they were when the job started — beside the session's
        foreground commands, and keeps its output on the host until it is received. Jobs
        live in their session: they survive this client, lost connections and the host's
        registry, and any client of the same user sees them (select sessions with
        --computer HOST). Removing a session stops and removes its jobs.

        Sessions are selected as everywhere (--name, --id, --instance-id, --computer);
        without a selector, every session in this client's list. Jobs within them with
        --job-id, --job-name, --job-instance-id and --state.

        Examples:
          tether invoke --name deploy --as-job --job-name build -- 'make -j4 all'
          tether job get
          tether job receive --name deploy --job-name build --wait
          tether job wait --computer web1 --any --timeout 60
          tether job stop --name deploy --job-id 2
          tether job remove --name deploy --state Completed
        """),
        subcommands: [JobGet.self, JobReceive.self, JobWait.self, JobStop.self, JobRemove.self]
    )
}

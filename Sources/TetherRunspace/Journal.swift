import TetherProtocol

/// The session's output journal: every record after the highest acknowledged one, in
/// sequence order (protocol.md, "Records"). Pure bookkeeping, no I/O.
///
/// Sequence numbers start at 1 and grow by one per record. Acknowledging trims the head.
/// In `drop` buffering the oldest stdout/stderr records can be discarded: each run of
/// discarded records is replaced by one `dropped` record that takes the run's *last*
/// sequence number, so a reader sees the gap immediately followed by the record that
/// explains it (a `dropped` record at seq S with count N stands for seqs S−N+1…S).
struct Journal {
    /// Records with seq > `ackedSeq`; the live part starts at `head`.
    private var entries: [Record] = []
    private var head = 0

    /// The newest sequence number handed out (0: none yet).
    private(set) var lastSeq: UInt64 = 0
    /// Every record up to this one has been acknowledged by some client.
    private(set) var ackedSeq: UInt64 = 0
    /// Body bytes of the journaled records: what `bufferLimit` bounds.
    private(set) var unackedBytes = 0

    /// What one record costs besides its body: its entry here and its array's header and
    /// malloc overhead. Counted against the buffer limit (`heldBytes`), so a journal of
    /// a million two-byte records is bounded like one of a few big ones.
    static let recordCost = 64

    /// Body bytes plus `recordCost` per record: what the buffer limit bounds.
    var heldBytes: Int { unackedBytes + count * Journal.recordCost }

    var count: Int { entries.count - head }
    var isEmpty: Bool { count == 0 }

    /// The oldest journaled record.
    var first: Record? { isEmpty ? nil : entries[head] }

    // MARK: Appending

    /// Numbers and journals a new record; returns it.
    @discardableResult
    mutating func append(_ kind: Record.Kind, body: [UInt8]) -> Record {
        lastSeq += 1
        let record = Record(seq: lastSeq, kind: kind, body: body)
        entries.append(record)
        unackedBytes += body.count
        return record
    }

    // MARK: Acknowledging

    /// Advances the acknowledged sequence number (monotonic, never past `lastSeq`) and
    /// trims what it covers. Returns true if anything changed.
    @discardableResult
    mutating func acknowledge(through seq: UInt64) -> Bool {
        let target = min(seq, lastSeq)
        guard target > ackedSeq else { return false }
        ackedSeq = target
        while head < entries.count && entries[head].seq <= target {
            unackedBytes -= entries[head].body.count
            entries[head] = Record(seq: 0, kind: .stdout, body: [])  // release the body now
            head += 1
        }
        compact()
        return true
    }

    // MARK: Reading

    /// The first journaled record whose seq is `seq` or later (a cursor's next record).
    func first(atOrAfter seq: UInt64) -> Record? {
        var low = head
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].seq < seq { low = middle + 1 } else { high = middle }
        }
        return low < entries.count ? entries[low] : nil
    }

    /// Every journaled record, oldest first (tests and diagnostics).
    var records: ArraySlice<Record> { entries[head...] }

    // MARK: Dropping

    /// `drop` buffering: discards the oldest output records (stdout, stderr, the other
    /// streams) until the journal fits
    /// in `limit` bytes. `dropped` records up to `sentThrough` have been sent to some
    /// channel: one already sent is never enlarged (its reader would count twice), an
    /// unsent one directly before a new run is merged with it, so a session nobody reads
    /// carries one `dropped` record however much it discards.
    /// Returns the bytes and records discarded by this call.
    @discardableResult
    mutating func dropOldestOutput(toFit limit: Int, sentThrough: UInt64) -> (bytes: UInt64, records: UInt64) {
        guard unackedBytes > limit else { return (0, 0) }
        let markerSize = Record.dropped(seq: 0, bytes: 0, records: 0).body.count
        var kept: [Record] = []
        kept.reserveCapacity(count)
        var run: (seq: UInt64, bytes: UInt64, records: UInt64)?
        var droppedBytes: UInt64 = 0
        var droppedRecords: UInt64 = 0
        var index = head

        while index < entries.count {
            let record = entries[index]
            let isOutput = record.kind.isOutput
            if isOutput && unackedBytes > limit {
                if run == nil {
                    // The marker replacing this run counts from the start, so the loop
                    // stops exactly when the journal, marker included, fits.
                    run = (record.seq, 0, 0)
                    unackedBytes += markerSize
                    if let previous = kept.last, previous.kind == .dropped, previous.seq > sentThrough,
                       let counts = try? previous.droppedCounts() {
                        kept.removeLast()
                        unackedBytes -= previous.body.count
                        run = (record.seq, counts.bytes, counts.records)
                    }
                }
                unackedBytes -= record.body.count
                droppedBytes += UInt64(record.body.count)
                droppedRecords += 1
                run!.seq = record.seq
                run!.bytes += UInt64(record.body.count)
                run!.records += 1
                index += 1
                continue
            }
            if let open = run {
                kept.append(.dropped(seq: open.seq, bytes: open.bytes, records: open.records))
                run = nil
            }
            if unackedBytes <= limit {
                kept.append(contentsOf: entries[index...])
                index = entries.count
                break
            }
            kept.append(record)
            index += 1
        }
        if let open = run {
            kept.append(.dropped(seq: open.seq, bytes: open.bytes, records: open.records))
        }
        entries = kept
        head = 0
        return (droppedBytes, droppedRecords)
    }

    // MARK: Memory

    /// Gives memory back: all of it when the journal empties (an idle session keeps
    /// nothing), the acknowledged prefix once it is most of the array.
    private mutating func compact() {
        if head == entries.count {
            entries = []
            head = 0
        } else if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}

import Dispatch
import Glibc

/// A resolved address to connect to, copied out of getaddrinfo's list.
struct SocketAddress: Sendable {
    var family: Int32
    var storage: sockaddr_storage
    var length: socklen_t

    /// "10.0.0.5" or "::1", for messages.
    var numericHost: String {
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var copy = storage
        let result = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
            }
        }
        return result == 0 ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }
}

/// Name resolution with getaddrinfo. Numeric addresses resolve inline; names resolve on a
/// Dispatch worker (getaddrinfo blocks and has no fd to poll) and the answer is handed
/// back to the Reactor's thread: the loop itself never waits on DNS.
enum AddressResolver {
    enum Failure: Error, Sendable {
        case notFound(String)
        case temporary(String)
    }

    /// ssh's AddressFamily: any, inet (IPv4 only) or inet6 (IPv6 only).
    static func family(_ addressFamily: String) -> Int32 {
        switch addressFamily.lowercased() {
        case "inet": AF_INET
        case "inet6": AF_INET6
        default: AF_UNSPEC
        }
    }

    static func numeric(_ host: String, port: Int, family: Int32 = AF_UNSPEC) -> [SocketAddress]? {
        try? lookup(host, port: port, flags: AI_NUMERICHOST | AI_NUMERICSERV, family: family).get()
    }

    static func resolve(_ host: String, port: Int, family: Int32 = AF_UNSPEC, on queue: DispatchQueue = .global(),
                        completion: @escaping @Sendable (Result<[SocketAddress], Failure>) -> Void) {
        queue.async { completion(lookup(host, port: port, flags: AI_NUMERICSERV | AI_ADDRCONFIG, family: family)) }
    }

    static func lookup(_ host: String, port: Int, flags: Int32, family: Int32 = AF_UNSPEC) -> Result<[SocketAddress], Failure> {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = flags
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            let reason = String(cString: gai_strerror(status))
            return .failure(status == EAI_AGAIN ? .temporary(reason) : .notFound(reason))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor = list
        while let info = cursor?.pointee {
            if let address = info.ai_addr, info.ai_addrlen <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.ai_addrlen)))
                }
                addresses.append(SocketAddress(family: info.ai_family, storage: storage, length: info.ai_addrlen))
            }
            cursor = info.ai_next
        }
        return addresses.isEmpty ? .failure(.notFound("no addresses")) : .success(addresses)
    }
}

import Foundation
import HostLogs
import Testing
import TestSupport

/// ss and lsof snapshots against jc's parse of the same files (its JSON kept beside them):
/// every internet socket row, field by field.
@Suite struct SocketSnapshotTests {
    static let dir = Corpus.root.appendingPathComponent("logs/ss_lsof")

    static func json(_ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
    }

    static func text(_ v: Any?) -> String? {
        switch v {
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        default: return nil
        }
    }

    @Test(arguments: ["jc__ubuntu-18.04__ss-sudo-tulpen", "jc__ubuntu-18.04__ss-sudo-a"])
    func ssRowsEqualJc(name: String) throws {
        let available = FileManager.default.fileExists(atPath: Self.dir.path)
        try #require(available || !Corpus.isCI, "ss/lsof corpus missing")
        guard available else { return }
        let want = try Self.json(name + ".json").filter { ["tcp", "udp"].contains(Self.text($0["netid"]) ?? "") }
        var model = HostModel()
        let summary = model.readSocketSnapshot(path: Self.dir.appendingPathComponent(name + ".out").path)
        #expect(summary.tool == .ss)
        #expect(model.sockets.count == want.count)
        var compared = 0
        for (row, w) in zip(model.sockets, want) {
            var got: [String: String?] = [
                "netid": row.proto, "state": row.state, "recv_q": row.recvQ.map(String.init), "send_q": row.sendQ.map(String.init),
                "local_address": row.localAddress, "local_port": row.localPort, "peer_address": row.peerAddress,
                "peer_port": row.peerPort, "interface": row.interface,
            ]
            let opts = w["opts"] as? [String: Any] ?? [:]
            if let owners = opts["process_id"] as? [String: Any] {
                // jc keys owners by pid, with the command under "user".
                for (pid, v) in owners {
                    let o = v as? [String: Any] ?? [:]
                    let mine = row.processes.first { String($0.pid) == pid }
                    #expect(mine?.command == Self.text(o["user"]) && mine?.fd == Self.text(o["file_descriptor"]), "line \(row.reference.line)")
                    compared += 1
                }
            }
            got["uid_number"] = row.uid.map(String.init)
            got["inode_number"] = row.inode
            for (key, value) in got {
                let expected = Self.text(w[key]) ?? Self.text(opts[key])
                #expect(value == expected, "line \(row.reference.line) \(key)")
                compared += 1
            }
        }
        print("\(name): \(model.sockets.count) socket rows, \(compared) fields equal to jc's; skipped \(summary.skipped)")
    }

    @Test func lsofRowsEqualJc() throws {
        let available = FileManager.default.fileExists(atPath: Self.dir.path)
        try #require(available || !Corpus.isCI, "ss/lsof corpus missing")
        guard available else { return }
        for name in ["jc__ubuntu-18.04__lsof-sudo", "jc__ubuntu-18.04__lsof"] {
            let want = try Self.json(name + ".json").filter { ["IPv4", "IPv6"].contains(Self.text($0["type"]) ?? "") }
            var model = HostModel()
            _ = model.readSocketSnapshot(path: Self.dir.appendingPathComponent(name + ".out").path)
            #expect(model.sockets.count == want.count, "\(name)")
            for (row, w) in zip(model.sockets, want) {
                let owner = row.processes.first
                let got: [String: String?] = [
                    "command": owner?.command, "pid": owner.map { String($0.pid) }, "tid": row.tid.map(String.init), "user": row.user,
                    "fd": owner?.fd, "type": row.type, "device": row.device, "name": row.name,
                ]
                for (key, value) in got { #expect(value == Self.text(w[key]), "\(name) line \(row.reference.line) \(key)") }
            }
            print("\(name): \(model.sockets.count) internet socket rows equal to jc's")
        }
    }
}

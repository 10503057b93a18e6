import CYAJL
import Foundation

/// What a reader wants of a JSON value: a scalar, an object with some of its keys, a list
/// of one shape, or only whether it is there. A class, so that a shape can contain itself
/// (CycloneDX components nest components). Sendable: `kind` is set while a shape is built,
/// once, and only read after.
public final class JSONShape: @unchecked Sendable {
    public enum Kind {
        case scalar
        case object([String: JSONShape])
        case list(JSONShape)
        /// An object whose keys are names (file names, say): every value of one shape.
        case map(JSONShape)
        /// Only its presence counts: the value is skipped.
        case present
    }
    public var kind: Kind { didSet { wanted = Self.wanted(kind) } }
    /// An object's wanted keys as bytes, to match yajl's keys without making a String of
    /// each (a String and a hash per key were a quarter of an SBOM's read).
    private(set) var wanted: [WantedKey] = []

    struct WantedKey {
        let bytes: [UInt8]
        let name: String
        let shape: JSONShape
    }

    public init(_ kind: Kind) {
        self.kind = kind
        wanted = Self.wanted(kind)
    }

    private static func wanted(_ kind: Kind) -> [WantedKey] {
        guard case .object(let keys) = kind else { return [] }
        return keys.map { WantedKey(bytes: Array($0.key.utf8), name: $0.key, shape: $0.value) }
    }

    public static let scalar = JSONShape(.scalar)
    public static let present = JSONShape(.present)
    public static func object(_ keys: [String: JSONShape]) -> JSONShape { JSONShape(.object(keys)) }
    public static func list(_ element: JSONShape) -> JSONShape { JSONShape(.list(element)) }
    public static func map(_ value: JSONShape) -> JSONShape { JSONShape(.map(value)) }
}

/// A JSON value cut down to a shape: the keys the shape names and nothing else. A value of
/// another type than the shape's is kept only as that type's mark, so that a number where
/// a string is due, or a string where an object is, costs that field and not the document.
public indirect enum JSONPart: Sendable {
    case string(String)
    /// A number, as written.
    case number(String)
    /// `true`, `false` or `null`.
    case scalar
    case object([String: JSONPart])
    case list([JSONPart])
    /// An object or a list where the shape wanted something else, or a `present` value.
    case skipped

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public subscript(key: String) -> JSONPart? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }
    /// The elements of a list (none for anything else).
    /// A number that is a whole 64-bit integer.
    public var int64: Int64? {
        if case .number(let n) = self { return Int64(n) }
        return nil
    }
    public var items: [JSONPart] {
        if case .list(let l) = self { return l }
        return []
    }
    public var isObject: Bool {
        if case .object = self { return true }
        return false
    }
}

extension Optional where Wrapped == JSONPart {
    public var string: String? { self?.string }
    public var int64: Int64? { self?.int64 }
    public var items: [JSONPart] { self?.items ?? [] }
    public subscript(key: String) -> JSONPart? { self?[key] }
    /// The list's elements that are objects (others are skipped, as a loose reader would).
    public var objects: [JSONPart] { items.filter(\.isObject) }
    /// The list's elements that are strings.
    public var strings: [String] { items.compactMap(\.string) }
}

public struct JSONStreamError: Error, CustomStringConvertible {
    public let description: String
    /// Where the input stopped being read (bytes from its start), when it was read at all.
    public var offset: Int64?
    /// The root object as far as it was read (its streamed lists' elements were handed on).
    public var partialRoot: JSONPart?
}

/// Reads a JSON document whose root is an object, as yajl's events come, into the parts a
/// shape asks for. The root's lists named in `streamed` are not kept: each element is
/// handed to `element` as soon as it ends and dropped (the root keeps an empty list, so
/// that its presence still shows). Memory is then what the caller keeps plus one element,
/// whatever the document's size: the whole file, or a tree of it, is never held.
public final class JSONPartReader {
    public typealias ElementHandler = (_ key: String, _ element: JSONPart) -> Void

    /// Deeper nesting (of any value, kept or skipped) ends the read: a hostile file of
    /// brackets would otherwise grow yajl's own stack a byte a level.
    public static let maxDepth = 512
    /// Values held at once (kept at the root, or in the element of a streamed list being
    /// read), past which the read ends: one element of millions of nested values (a
    /// component nesting components) would otherwise be held whole, at some 100 bytes a
    /// value.
    public static let maxHeldValues = 1 << 20

    /// An object or a list being read. A class: its fields and items grow in place (an
    /// enum's payload, taken out and put back, copied them on every element).
    private final class Frame {
        /// Whether it is an object (or a map); else a list.
        let isObject: Bool
        /// The keys wanted, for an object.
        let wanted: [JSONShape.WantedKey]
        /// The shape of any key's value, for a map.
        var anyKey: JSONShape?
        /// The elements' shape, for a list.
        let element: JSONShape?
        /// The root key of a streamed list: its elements are handed on, not kept.
        let streamedAs: String?
        var fields: [String: JSONPart] = [:]
        var items: [JSONPart] = []
        /// The object's key whose value comes next, and the shape wanted for it (nil: not wanted).
        var key: String?
        var valueShape: JSONShape?

        init(wanted: [JSONShape.WantedKey]) { isObject = true; self.wanted = wanted; element = nil; streamedAs = nil }
        init(element: JSONShape, streamedAs: String?) {
            isObject = false
            wanted = []
            self.element = element
            self.streamedAs = streamedAs
        }
    }

    private let rootShape: JSONShape
    private let streamed: Set<String>
    private let element: ElementHandler
    /// Called with a streamed list's key when it ends.
    public var listEnded: ((String) -> Void)?
    private var stack: [Frame] = []
    /// Levels of a value being skipped (0: none), and whether it ends as `.skipped` in its parent.
    private var skipDepth = 0
    private var skipLeavesMark = false
    private var depth = 0
    /// Values held outside any streamed list's element, and in the element being read.
    private var rootHeld = 0
    private var elementHeld = 0
    /// Whether a streamed list is open (its elements' values count as `elementHeld`).
    private var inStreamedList = false
    private(set) var root: JSONPart?
    private var failure: String?

    public init(shape: JSONShape, streamed: Set<String>, element: @escaping ElementHandler) {
        rootShape = shape
        self.streamed = streamed
        self.element = element
    }

    /// Parses the chunks `next` gives (an empty one ends the input) and returns the root.
    /// Once per reader: its state is that of one document.
    public func read(_ next: () throws -> [UInt8]) throws -> JSONPart {
        let context = Unmanaged.passUnretained(self).toOpaque()
        // yajl keeps the callbacks' address, not a copy: they must outlive the handle.
        let callbacks = UnsafeMutablePointer<yajl_callbacks>.allocate(capacity: 1)
        callbacks.initialize(to: Self.callbacks)
        defer { callbacks.deallocate() }
        guard let handle = yajl_alloc(callbacks, nil, context) else { throw JSONStreamError(description: "out of memory") }
        defer { yajl_free(handle) }
        var before: Int64 = 0
        while true {
            let chunk = try next()
            if chunk.isEmpty { break }
            let status = chunk.withUnsafeBufferPointer { yajl_parse(handle, $0.baseAddress, $0.count) }
            if status != yajl_status_ok { throw error(handle, chunk, offset: before + Int64(yajl_get_bytes_consumed(handle))) }
            before += Int64(chunk.count)
        }
        if yajl_complete_parse(handle) != yajl_status_ok { throw error(handle, [], offset: before) }
        guard let root, root.isObject else { throw JSONStreamError(description: "not a JSON object") }
        return root
    }

    private func error(_ handle: yajl_handle, _ chunk: [UInt8], offset: Int64) -> JSONStreamError {
        var reason = failure ?? "not valid JSON"
        if failure == nil, let text = chunk.withUnsafeBufferPointer({ yajl_get_error(handle, 0, $0.baseAddress, $0.count) }) {
            reason = "not valid JSON (\(String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)))"
            yajl_free_error(handle, text)
        }
        // What the root object had when the input went wrong: the caller may keep it.
        let partial = stack.first.flatMap { $0.isObject ? JSONPart.object($0.fields) : nil }
        return JSONStreamError(description: reason, offset: offset, partialRoot: partial)
    }

    // MARK: Events

    /// The shape wanted where the next value starts; nil: not wanted at all.
    private var shapeHere: JSONShape? {
        guard let top = stack.last else { return rootShape }
        return top.isObject ? top.valueShape : top.element
    }

    /// A value ended: into its parent, or handed on if its list is streamed. False when
    /// that makes more values held than `maxHeldValues`.
    private func complete(_ value: JSONPart) -> Bool {
        guard let top = stack.last else { root = value; return true }
        if let streamedAs = top.streamedAs {
            element(streamedAs, value)
            elementHeld = 0
            return true
        }
        if top.isObject {
            if let key = top.key { top.fields[key] = value }
            top.key = nil
            top.valueShape = nil
        } else {
            top.items.append(value)
        }
        if inStreamedList { elementHeld += 1 } else { rootHeld += 1 }
        guard rootHeld + elementHeld <= Self.maxHeldValues else {
            failure = "more than \(Self.maxHeldValues) values held at once"
            return false
        }
        return true
    }

    /// Starts skipping an object or a list; `mark`: it was wanted as another type, and
    /// leaves `.skipped` in its parent.
    private func skip(mark: Bool) -> Bool {
        skipDepth = 1
        skipLeavesMark = mark
        return enter()
    }

    private func enter() -> Bool {
        depth += 1
        if depth > Self.maxDepth {
            failure = "nested deeper than \(Self.maxDepth) levels"
            return false
        }
        return true
    }

    func scalar(_ value: JSONPart) -> Bool {
        guard skipDepth == 0, let shape = shapeHere else { return true }
        if case .present = shape.kind { return complete(.skipped) }
        return complete(value)
    }

    /// Whether a string or number at this place is kept (only then is it decoded).
    var wantsValue: Bool { skipDepth == 0 && shapeHere != nil }

    func startObject() -> Bool {
        if skipDepth > 0 { skipDepth += 1; return enter() }
        guard let shape = shapeHere else { return skip(mark: false) }
        switch shape.kind {
        case .object: stack.append(Frame(wanted: shape.wanted))
        case .map(let value):
            let frame = Frame(wanted: [])
            frame.anyKey = value
            stack.append(frame)
        default: return skip(mark: true)
        }
        return enter()
    }

    func key(_ bytes: UnsafeRawPointer?, _ count: Int) -> Bool {
        if skipDepth > 0 { return true }
        guard let top = stack.last, top.isObject else { return false }
        if let any = top.anyKey {
            top.key = Self.text(bytes, count)
            top.valueShape = any
            return true
        }
        top.key = nil
        top.valueShape = nil
        for w in top.wanted where w.bytes.count == count {
            if w.bytes.withUnsafeBytes({ mine in
                guard let a = mine.baseAddress, let b = bytes else { return count == 0 }
                return memcmp(a, b, count) == 0
            }) {
                top.key = w.name
                top.valueShape = w.shape
                break
            }
        }
        return true
    }

    func endObject() -> Bool {
        depth -= 1
        if skipDepth > 0 { return closeSkip() }
        guard let top = stack.popLast(), top.isObject else { return false }
        return complete(.object(top.fields))
    }

    func startList() -> Bool {
        if skipDepth > 0 { skipDepth += 1; return enter() }
        guard let shape = shapeHere else { return skip(mark: false) }
        guard case .list(let element) = shape.kind else { return skip(mark: true) }
        var streamedAs: String?
        if stack.count == 1, let key = stack[0].key, streamed.contains(key) {
            streamedAs = key
            inStreamedList = true
        }
        stack.append(Frame(element: element, streamedAs: streamedAs))
        return enter()
    }

    func endList() -> Bool {
        depth -= 1
        if skipDepth > 0 { return closeSkip() }
        guard let top = stack.popLast(), !top.isObject else { return false }
        if let key = top.streamedAs {
            inStreamedList = false
            listEnded?(key)
        }
        return complete(.list(top.items))
    }

    private func closeSkip() -> Bool {
        skipDepth -= 1
        if skipDepth == 0 && skipLeavesMark { return complete(.skipped) }
        return true
    }

    // MARK: yajl

    /// Runs `event` on the reader the context names (always `self`, as `read` passes it);
    /// 1 goes on, 0 stops the parse.
    private static func on(_ context: UnsafeMutableRawPointer?, _ event: (JSONPartReader) -> Bool) -> Int32 {
        guard let context else { return 0 }
        // Lent without a retain and release per event (`read` holds the reader throughout).
        return Unmanaged<JSONPartReader>.fromOpaque(context)._withUnsafeGuaranteedRef(event) ? 1 : 0
    }

    private static func text(_ bytes: UnsafeRawPointer?, _ count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// Numbers come as text and are not converted: yajl's own conversion fails the whole
    /// parse on an integer past 64 bits. Strings and numbers no shape wants are not decoded.
    private static let callbacks = yajl_callbacks(
        yajl_null: { c in on(c) { $0.scalar(.scalar) } },
        yajl_boolean: { c, _ in on(c) { $0.scalar(.scalar) } },
        yajl_integer: nil,
        yajl_double: nil,
        yajl_number: { c, bytes, count in on(c) { !$0.wantsValue || $0.scalar(.number(text(bytes, count))) } },
        yajl_string: { c, bytes, count in on(c) { !$0.wantsValue || $0.scalar(.string(text(bytes, count))) } },
        yajl_start_map: { c in on(c) { $0.startObject() } },
        yajl_map_key: { c, bytes, count in on(c) { $0.key(bytes, count) } },
        yajl_end_map: { c in on(c) { $0.endObject() } },
        yajl_start_array: { c in on(c) { $0.startList() } },
        yajl_end_array: { c in on(c) { $0.endList() } }
    )
}

/// `value`, moved out, with `replacement` left in its place. A decoder's result built in
/// a local and returned, or appended to an event while the local lives on, was copied (a
/// retain of each of its arrays) and the local destroyed after; a swap moves it.
@inline(__always)
func replaced<T>(_ value: inout T, with replacement: T) -> T {
    var out = replacement
    swap(&out, &value)
    return out
}

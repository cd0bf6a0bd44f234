//! Error chains for logs: an error's message and every cause below it, on one line. A leaf
//! module, so that every layer (database, storage, HTTP) can use it.

/// An error's message followed by each of its causes, `: `-separated, for logs. `io::Error`s
/// that wrap another error are looked through (their own `source` skips the wrapped error).
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = cause_of(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        // Wrappers that repeat their cause's text (`{0}`) add nothing.
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause_of(cause);
    }
    line
}

/// The error `error` wraps, looking into `io::Error`'s custom payload.
pub fn cause_of<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner as &(dyn std::error::Error + 'static));
    }
    error.source()
}

/// Whether `error` or any of its causes is a `T`.
pub fn caused_by<T: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
) -> bool {
    let mut next = Some(error);
    while let Some(current) = next {
        if current.is::<T>() {
            return true;
        }
        next = cause_of(current);
    }
    false
}

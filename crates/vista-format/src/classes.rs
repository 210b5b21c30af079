//! The one rule for a class name: class names become folder names, so every source of
//! them (folders, CSV labels, class lists, manifests, prediction headers) is checked by it.

/// Why a string cannot be a class name. Class names become folder names (`submit
/// --format folders`, `gan sample`, `<out>/<class>/`), so one rule, [`check_class_name`],
/// applies to every source: folder names, CSV labels, `classes.txt` lines, class maps and
/// prediction files' headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadClassName {
    /// The name is the empty string.
    #[error("is empty")]
    Empty,
    /// The name is longer than [`MAX_CLASS_NAME_BYTES`] bytes.
    #[error("is longer than {MAX_CLASS_NAME_BYTES} bytes")]
    TooLong,
    /// The name is `.` or `..`, which mean the current and the parent folder.
    #[error("is `.` or `..`")]
    Dots,
    /// The name contains `/` or `\`, so it would name a path, not one folder.
    #[error("contains a path separator (`/` or `\\`)")]
    Separator,
    /// The name contains a control character or NUL.
    #[error("contains a control character or NUL")]
    Control,
    /// The name starts or ends with white space.
    #[error("starts or ends with white space")]
    Spaces,
}

/// The longest class name accepted, in bytes (a file-name component is at most 255).
pub const MAX_CLASS_NAME_BYTES: usize = 200;

/// Checks that `name` can be a class: one plain path component on every platform.
pub fn check_class_name(name: &str) -> std::result::Result<(), BadClassName> {
    if name.is_empty() {
        return Err(BadClassName::Empty);
    }
    if name.len() > MAX_CLASS_NAME_BYTES {
        return Err(BadClassName::TooLong);
    }
    if name == "." || name == ".." {
        return Err(BadClassName::Dots);
    }
    if name.contains(['/', '\\']) {
        return Err(BadClassName::Separator);
    }
    if name.chars().any(char::is_control) {
        return Err(BadClassName::Control);
    }
    if name.trim() != name {
        return Err(BadClassName::Spaces);
    }
    Ok(())
}

/// Checks a list of class names read from `path`: every name passes
/// [`check_class_name`] and none appears twice.
pub fn check_class_list(names: &[String], path: &std::path::Path) -> crate::Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        check_class_name(name).map_err(|why| crate::Error::BadClassName {
            path: path.to_path_buf(),
            line: i + 1,
            name: name.clone(),
            why,
        })?;
        if !seen.insert(name) {
            return Err(crate::Error::DuplicateClass {
                path: path.to_path_buf(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

//! `executableName` as the MultiLangDaemon turns it into a command: the value split on runs of
//! spaces (Java's `split(" +")`), with no shell: tabs, quotes, `$VARIABLES`, globs and
//! redirections are passed literally. A value that starts with a space gives an empty program
//! name, which no daemon can start.
//!
//! ```
//! use kcl_properties::command_words;
//! assert_eq!(command_words("python3  app.py --flag"), Some(vec!["python3".into(), "app.py".into(), "--flag".into()]));
//! assert_eq!(command_words("'my app'"), Some(vec!["'my".into(), "app'".into()]));
//! assert_eq!(command_words(" app"), None);
//! assert_eq!(command_words(""), None);
//! ```

/// The program and its arguments of an `executableName` value (see the [module](self)
/// documentation); `None` when the program name would be empty.
pub fn command_words(value: &str) -> Option<Vec<String>> {
    if value.is_empty() || value.starts_with(' ') {
        return None;
    }
    Some(
        value
            .split(' ')
            .filter(|word| !word.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

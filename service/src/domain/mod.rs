//! Types that are valid by construction: a handler that holds one need not check it again.

pub mod file_name;
pub mod password;
pub mod username;

pub use file_name::{FileName, FileNameError};
pub use password::{Password, PasswordError};
pub use username::{Username, UsernameError};

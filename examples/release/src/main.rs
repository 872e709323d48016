//! greeter: prints a greeting. The sample project that `gantry release` is tested on.

fn greeting(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|name| !name.is_empty()) {
        Some(name) => format!("Hello, {name}!"),
        None => "Hello, world!".to_owned(),
    }
}

fn main() {
    let name = std::env::args().nth(1);
    println!("{}", greeting(name.as_deref()));
}

#[cfg(test)]
mod tests {
    use super::greeting;

    #[test]
    fn greets_the_world_by_default() {
        assert_eq!(greeting(None), "Hello, world!");
    }

    #[test]
    fn greets_by_name() {
        assert_eq!(greeting(Some("auditor")), "Hello, auditor!");
    }

    #[test]
    fn a_blank_name_is_no_name() {
        assert_eq!(greeting(Some("  ")), "Hello, world!");
    }
}

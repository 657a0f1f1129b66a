//! Multi-level list menus: where a customer is, and where a message takes them.
//!
//! A menu level is sent as a list message whose row ids are the option ids. The position is
//! the path of option ids from the main menu. A message chooses an option by its id (a list
//! reply), its 1-based number typed as text, or its title (compared normalized); the `back`
//! words go up one level (staying at the main menu), the `main` words go to the main menu;
//! anything else is an invalid choice.

use super::matcher::MessageFacts;
use super::model::{MenuNode, MenuOption, MenuSettings};
use super::normalize::normalize;

/// Where a message takes the customer.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuMove<'m> {
    /// Show the level at `path` (back, main).
    Show { path: Vec<String> },
    /// `option` was chosen on the level at `path`.
    Chosen {
        option: &'m MenuOption,
        path: Vec<String>,
    },
    /// Not an option, nor a back / main word.
    Invalid,
}

/// The level at `path` (option ids from the main menu); `None` when the menu no longer has it.
pub fn level<'m>(root: &'m MenuNode, path: &[String]) -> Option<&'m MenuNode> {
    let mut node = root;
    for id in path {
        node = node
            .options
            .iter()
            .find(|o| &o.id == id)?
            .submenu
            .as_ref()?;
    }
    Some(node)
}

/// Where the message `facts` takes a customer at `path`. `None` when `path` no longer exists
/// (the menu was edited): the caller forgets the position.
pub fn navigate<'m>(
    root: &'m MenuNode,
    settings: &MenuSettings,
    path: &[String],
    facts: &MessageFacts,
) -> Option<MenuMove<'m>> {
    let node = level(root, path)?;
    if let Some(i) = choose_index(&node.options, |o| &o.id, |o| &o.title, facts) {
        return Some(MenuMove::Chosen {
            option: &node.options[i],
            path: path.to_vec(),
        });
    }
    if is_one_of(facts, &settings.back) {
        let mut up = path.to_vec();
        up.pop();
        return Some(MenuMove::Show { path: up });
    }
    if is_one_of(facts, &settings.main) {
        return Some(MenuMove::Show { path: vec![] });
    }
    Some(MenuMove::Invalid)
}

/// The step name of the level at `path`: `menu` for the main menu, `menu:1/2` below.
pub fn level_step(path: &[String]) -> String {
    if path.is_empty() {
        "menu".into()
    } else {
        format!("menu:{}", path.join("/"))
    }
}

/// Is the message's text one of `words` (compared normalized; a word with no letters or
/// digits, like `#`, compared as written)?
pub(crate) fn is_one_of(facts: &MessageFacts, words: &[String]) -> bool {
    let Some(text) = facts.text().or(facts.reply_title()) else {
        return false;
    };
    let norm = normalize(text);
    words.iter().any(|w| {
        let nw = normalize(w);
        if nw.is_empty() {
            !w.trim().is_empty() && text.trim() == w.trim()
        } else {
            norm == nw
        }
    })
}

/// Which of `items` the message chooses: by id (a button / list reply, or the id typed), by
/// its 1-based number typed as text, or by title (normalized).
pub(crate) fn choose_index<T>(
    items: &[T],
    id: impl Fn(&T) -> &str,
    title: impl Fn(&T) -> &str,
    facts: &MessageFacts,
) -> Option<usize> {
    if let Some(rid) = facts.reply_id()
        && let Some(i) = items.iter().position(|o| id(o) == rid)
    {
        return Some(i);
    }
    if let Some(t) = facts.text() {
        let t = t.trim().trim_end_matches(['.', ')']);
        if !t.is_empty()
            && t.len() <= 3
            && t.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = t.parse::<usize>()
            && (1..=items.len()).contains(&n)
        {
            return Some(n - 1);
        }
    }
    for s in [facts.text(), facts.reply_title()].into_iter().flatten() {
        let n = normalize(s);
        if n.is_empty() {
            continue;
        }
        if let Some(i) = items.iter().position(|o| normalize(title(o)) == n) {
            return Some(i);
        }
        if let Some(i) = items.iter().position(|o| normalize(id(o)) == n) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::testutil::*;

    fn m() -> MenuNode {
        sample_menu()
    }

    fn go<'m>(root: &'m MenuNode, path: &[&str], text: &str) -> Option<MenuMove<'m>> {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        navigate(root, &MenuSettings::default(), &path, &text_facts(text))
    }

    #[test]
    fn choose_by_number_title_or_id() {
        let root = m();
        let chosen = |mv: Option<MenuMove>| match mv {
            Some(MenuMove::Chosen { option, .. }) => option.id.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(chosen(go(&root, &[], "1")), "sales");
        assert_eq!(chosen(go(&root, &[], " 2. ")), "support");
        assert_eq!(chosen(go(&root, &[], "SOPORTE TÉCNICO")), "support");
        assert_eq!(chosen(go(&root, &[], "sales")), "sales");
        let mut f = text_facts("");
        f.text = None;
        f.reply_id = Some("agent");
        assert_eq!(
            chosen(navigate(&root, &MenuSettings::default(), &[], &f)),
            "agent"
        );
        assert_eq!(go(&root, &[], "9"), Some(MenuMove::Invalid));
        assert_eq!(go(&root, &[], "hello"), Some(MenuMove::Invalid));
    }

    #[test]
    fn back_and_main() {
        let root = m();
        let sub = vec!["support".to_string()];
        assert_eq!(
            go(&root, &["support"], "0"),
            Some(MenuMove::Show { path: vec![] })
        );
        assert_eq!(
            go(&root, &["support"], "Volver"),
            Some(MenuMove::Show { path: vec![] })
        );
        assert_eq!(
            go(&root, &["support"], "zurück"),
            Some(MenuMove::Show { path: vec![] })
        );
        assert_eq!(
            go(&root, &["support"], "#"),
            Some(MenuMove::Show { path: vec![] })
        );
        assert_eq!(
            go(&root, &["support"], "Menu"),
            Some(MenuMove::Show { path: vec![] })
        );
        assert_eq!(
            go(&root, &[], "back"),
            Some(MenuMove::Show { path: vec![] })
        );
        assert!(
            matches!(go(&root, &["support"], "1"), Some(MenuMove::Chosen { path, .. }) if path == sub)
        );
        assert_eq!(go(&root, &["nope"], "1"), None);
        assert_eq!(level_step(&[]), "menu");
        assert_eq!(level_step(&["a".into(), "b".into()]), "menu:a/b");
    }
}

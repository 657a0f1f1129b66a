//! Flows: a graph of nodes and edges in React Flow's shape, validated, then stepped one
//! customer answer at a time.
//!
//! A step starts at a node and walks the graph, sending each node's message, until a node waits
//! for the customer (a `question` or an `input`), the flow hands over, or it ends (an `end`
//! node, or a node with no way on). At most [`MAX_NODES_PER_STEP`] nodes are visited in one step,
//! so a cycle without a waiting node cannot loop forever (the flow ends there).
//!
//! Edges: a node goes on by its first outgoing edge; a question by the edge whose
//! `sourceHandle` is the chosen option's id; a condition by the edge of the first true
//! condition, else by the `else` edge.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::NaiveDate;

use crate::meta::outbound::{
    INTERACTIVE_BODY_MAX, LIST_ROW_ID_MAX, LIST_ROW_TITLE_MAX, ListRow, ListSection,
    OutboundContent, REPLY_BUTTON_TITLE_MAX, REPLY_BUTTONS_MAX, ReplyButton, TEXT_BODY_MAX,
};

use super::matcher::MessageFacts;
use super::menu::choose_index;
use super::model::{
    Check, ConditionOp, FLOW_NODES_MAX, FlowCondition, FlowEdge, FlowNode, FlowNodeKind,
    InputValidation, at_most, fail, is_variable_name, optional, required,
};
use super::normalize::normalize;
use super::render::{Customer, QUESTION_LIST_BUTTON, clip, render_text};

/// Most nodes visited in one step.
pub const MAX_NODES_PER_STEP: usize = 20;
/// Most choices of a question (a list holds 10 rows).
pub const QUESTION_OPTIONS_MAX: usize = 10;
/// Sent by a handover node without text.
pub const HANDOVER_TEXT: &str = "Thanks! A member of our team will be with you shortly.";
/// Sent on an answer that is not one of a question's options (without `invalid`).
pub const QUESTION_INVALID: &str = "Please choose one of the options.";
/// Default ticket priority.
pub const TICKET_PRIORITY: &str = "medium";
/// The `sourceHandle` a condition node goes on by when no condition holds.
pub const ELSE_HANDLE: &str = "else";

/// What one step of a flow does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowStep {
    /// (step, message): step is `flow:<node id>` (`flow:<node id>:invalid` for the reply to an
    /// invalid answer).
    pub messages: Vec<(String, OutboundContent)>,
    pub tickets: Vec<TicketSpec>,
    /// The flow handed over, for this reason.
    pub handover: Option<String>,
    /// The node now waiting for the customer; `None`: the flow is over.
    pub waiting: Option<String>,
    pub vars: BTreeMap<String, String>,
}

/// A ticket node reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSpec {
    pub subject: String,
    pub description: String,
    pub priority: String,
}

struct Graph<'f> {
    nodes: &'f [FlowNode],
    edges: &'f [FlowEdge],
    by_id: HashMap<&'f str, usize>,
}

impl<'f> Graph<'f> {
    fn new(nodes: &'f [FlowNode], edges: &'f [FlowEdge]) -> Self {
        let by_id = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        Self {
            nodes,
            edges,
            by_id,
        }
    }

    fn node(&self, id: &str) -> Option<&'f FlowNode> {
        self.by_id.get(id).map(|&i| &self.nodes[i])
    }

    /// Target of the first edge out of `from` (with `handle`, if given).
    fn next(&self, from: &str, handle: Option<&str>) -> Option<&'f str> {
        self.edges
            .iter()
            .find(|e| {
                e.source == from
                    && match handle {
                        None => true,
                        Some(h) => e.source_handle.as_deref() == Some(h),
                    }
            })
            .map(|e| e.target.as_str())
    }
}

/// Start a flow at its `start` node.
pub fn start(
    nodes: &[FlowNode],
    edges: &[FlowEdge],
    customer: &Customer,
    vars: BTreeMap<String, String>,
) -> FlowStep {
    let g = Graph::new(nodes, edges);
    let mut step = FlowStep {
        vars,
        ..Default::default()
    };
    if let Some(s) = nodes.iter().find(|n| n.kind == FlowNodeKind::Start) {
        run(&g, &s.id, customer, &mut step);
    }
    step
}

/// Give the customer's message to the node `waiting` and step on. `None` when that node is no
/// longer a waiting node of the flow (the flow was edited): the caller forgets the flow.
pub fn resume(
    nodes: &[FlowNode],
    edges: &[FlowEdge],
    waiting: &str,
    facts: &MessageFacts,
    customer: &Customer,
    vars: BTreeMap<String, String>,
) -> Option<FlowStep> {
    let g = Graph::new(nodes, edges);
    let node = g.node(waiting)?;
    let mut step = FlowStep {
        vars,
        ..Default::default()
    };
    match node.kind {
        FlowNodeKind::Question => {
            let choices = &node.data.options;
            match choose_index(choices, |c| &c.id, |c| &c.title, facts) {
                Some(i) => {
                    let choice = &choices[i];
                    if let Some(v) = &node.data.variable {
                        step.vars.insert(v.clone(), choice.title.clone());
                    }
                    match g.next(&node.id, Some(&choice.id)) {
                        Some(next) => run(&g, next, customer, &mut step),
                        None => step.waiting = None,
                    }
                }
                None => {
                    let text = node.data.invalid.as_deref().unwrap_or(QUESTION_INVALID);
                    push_text(
                        &mut step,
                        format!("flow:{}:invalid", node.id),
                        text,
                        customer,
                    );
                    step.messages.push((
                        format!("flow:{}", node.id),
                        question(node, customer, &step.vars),
                    ));
                    step.waiting = Some(node.id.clone());
                }
            }
        }
        FlowNodeKind::Input => {
            let validation = node.data.validation.unwrap_or_default();
            let answer = facts.text().or(facts.reply_title());
            match answer.and_then(|a| check_input(validation, a)) {
                Some(value) => {
                    if let Some(v) = &node.data.variable {
                        step.vars.insert(v.clone(), value);
                    }
                    match g.next(&node.id, None) {
                        Some(next) => run(&g, next, customer, &mut step),
                        None => step.waiting = None,
                    }
                }
                None => {
                    let text = node
                        .data
                        .invalid
                        .as_deref()
                        .unwrap_or(input_invalid(validation));
                    push_text(
                        &mut step,
                        format!("flow:{}:invalid", node.id),
                        text,
                        customer,
                    );
                    step.waiting = Some(node.id.clone());
                }
            }
        }
        _ => return None,
    }
    Some(step)
}

fn push_text(step: &mut FlowStep, id: String, text: &str, customer: &Customer) {
    let body = clip(render_text(text, customer, &step.vars), TEXT_BODY_MAX);
    if !body.trim().is_empty() {
        step.messages.push((
            id,
            OutboundContent::Text {
                body,
                preview_url: false,
            },
        ));
    }
}

fn question(
    node: &FlowNode,
    customer: &Customer,
    vars: &BTreeMap<String, String>,
) -> OutboundContent {
    let body = clip(
        render_text(node.data.text.as_deref().unwrap_or(""), customer, vars),
        INTERACTIVE_BODY_MAX,
    );
    let choices = &node.data.options;
    if choices.len() <= REPLY_BUTTONS_MAX {
        OutboundContent::Buttons {
            body,
            header: None,
            footer: None,
            buttons: choices
                .iter()
                .map(|c| ReplyButton {
                    id: c.id.clone(),
                    title: c.title.clone(),
                })
                .collect(),
        }
    } else {
        OutboundContent::List {
            body,
            header: None,
            footer: None,
            button: QUESTION_LIST_BUTTON.into(),
            sections: vec![ListSection {
                title: None,
                rows: choices
                    .iter()
                    .map(|c| ListRow {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        description: None,
                    })
                    .collect(),
            }],
        }
    }
}

/// Walk from `from` until a node waits, hands over or the flow ends.
fn run(g: &Graph, from: &str, customer: &Customer, step: &mut FlowStep) {
    let mut current = Some(from);
    let mut visited = 0;
    step.waiting = None;
    while let Some(id) = current.take() {
        visited += 1;
        if visited > MAX_NODES_PER_STEP {
            break;
        }
        let Some(node) = g.node(id) else {
            break;
        };
        let data = &node.data;
        let step_id = format!("flow:{}", node.id);
        match node.kind {
            FlowNodeKind::Start | FlowNodeKind::Message => {
                if let Some(t) = &data.text {
                    push_text(step, step_id, t, customer);
                }
                current = g.next(&node.id, None);
            }
            FlowNodeKind::Question => {
                step.messages
                    .push((step_id, question(node, customer, &step.vars)));
                step.waiting = Some(node.id.clone());
            }
            FlowNodeKind::Input => {
                if let Some(t) = &data.text {
                    push_text(step, step_id, t, customer);
                }
                step.waiting = Some(node.id.clone());
            }
            FlowNodeKind::Condition => {
                let hit = data
                    .conditions
                    .iter()
                    .find(|c| condition_holds(c, customer, &step.vars));
                current = match hit {
                    Some(c) => g.next(&node.id, Some(&c.id)),
                    None => g.next(&node.id, Some(ELSE_HANDLE)),
                };
            }
            FlowNodeKind::SetVariable => {
                if let Some(v) = &data.variable {
                    let value =
                        render_text(data.value.as_deref().unwrap_or(""), customer, &step.vars);
                    step.vars.insert(v.clone(), value);
                }
                current = g.next(&node.id, None);
            }
            FlowNodeKind::Handover => {
                let text = data.text.as_deref().unwrap_or(HANDOVER_TEXT);
                push_text(step, step_id, text, customer);
                step.handover = Some(
                    data.reason
                        .clone()
                        .filter(|r| !r.trim().is_empty())
                        .unwrap_or_else(|| "flow".into()),
                );
            }
            FlowNodeKind::Ticket => {
                let r = |s: &Option<String>| {
                    render_text(s.as_deref().unwrap_or(""), customer, &step.vars)
                };
                let ticket = TicketSpec {
                    subject: r(&data.subject),
                    description: r(&data.description),
                    priority: data
                        .priority
                        .as_deref()
                        .filter(|p| !p.trim().is_empty())
                        .map(|p| render_text(p, customer, &step.vars))
                        .unwrap_or_else(|| TICKET_PRIORITY.into()),
                };
                step.tickets.push(ticket);
                if let Some(t) = &data.text {
                    push_text(step, step_id, t, customer);
                }
                current = g.next(&node.id, None);
            }
            FlowNodeKind::End => {
                if let Some(t) = &data.text {
                    push_text(step, step_id, t, customer);
                }
            }
        }
    }
}

fn number(s: &str) -> Option<f64> {
    let t = s.trim().replace(',', ".");
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn condition_holds(
    c: &FlowCondition,
    customer: &Customer,
    vars: &BTreeMap<String, String>,
) -> bool {
    let value = vars.get(c.variable.trim()).map(String::as_str);
    let expected = render_text(c.value.as_deref().unwrap_or(""), customer, vars);
    match c.op {
        ConditionOp::Exists => value.is_some_and(|v| !v.trim().is_empty()),
        ConditionOp::Equals => normalize(value.unwrap_or("")) == normalize(&expected),
        ConditionOp::NotEquals => normalize(value.unwrap_or("")) != normalize(&expected),
        ConditionOp::Contains => {
            let e = normalize(&expected);
            !e.is_empty() && normalize(value.unwrap_or("")).contains(&e)
        }
        ConditionOp::GreaterThan | ConditionOp::LessThan => {
            match (value.and_then(number), number(&expected)) {
                (Some(a), Some(b)) if c.op == ConditionOp::GreaterThan => a > b,
                (Some(a), Some(b)) => a < b,
                _ => false,
            }
        }
    }
}

/// The default reply to an invalid input.
pub fn input_invalid(v: InputValidation) -> &'static str {
    match v {
        InputValidation::Text => "Please type your answer.",
        InputValidation::Email => "Please enter a valid email address.",
        InputValidation::Number => "Please enter a number.",
        InputValidation::Phone => "Please enter a valid phone number.",
        InputValidation::Date => "Please enter a date as YYYY-MM-DD or DD/MM/YYYY.",
    }
}

/// The value stored for a valid answer, `None` when invalid.
pub fn check_input(v: InputValidation, answer: &str) -> Option<String> {
    let a = answer.trim();
    if a.is_empty() {
        return None;
    }
    match v {
        InputValidation::Text => Some(clip(a.to_string(), TEXT_BODY_MAX)),
        InputValidation::Email => {
            let (local, domain) = a.split_once('@')?;
            let ok = !local.is_empty()
                && a.len() <= 254
                && !a.chars().any(char::is_whitespace)
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..");
            ok.then(|| a.to_string())
        }
        InputValidation::Number => number(a).map(|_| a.replace(',', ".")),
        InputValidation::Phone => {
            let allowed = a
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
            let digits = a.chars().filter(char::is_ascii_digit).count();
            let plus_ok = !a.chars().skip(1).any(|c| c == '+');
            (allowed && plus_ok && (6..=15).contains(&digits)).then(|| a.to_string())
        }
        InputValidation::Date => {
            let d = if a.len() == 10 && a.as_bytes()[4] == b'-' {
                NaiveDate::parse_from_str(a, "%Y-%m-%d").ok()
            } else if a.len() == 10 && a.as_bytes()[2] == b'/' && a.as_bytes()[5] == b'/' {
                NaiveDate::parse_from_str(a, "%d/%m/%Y").ok()
            } else {
                None
            };
            d.map(|d| d.format("%Y-%m-%d").to_string())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// The graph's rules, fields named `response.nodes[i]…` / `response.edges[j]…`.
pub(crate) fn validate_flow(nodes: &[FlowNode], edges: &[FlowEdge]) -> Check {
    if nodes.is_empty() {
        return fail(
            "response.nodes",
            "a flow needs nodes (exactly one start node)",
        );
    }
    if nodes.len() > FLOW_NODES_MAX {
        return fail(
            "response.nodes",
            format!("at most {FLOW_NODES_MAX} nodes (got {})", nodes.len()),
        );
    }
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        required(|| format!("response.nodes[{i}].id"), &n.id, 100)?;
        if ids.insert(n.id.as_str(), i).is_some() {
            return fail(
                format!("response.nodes[{i}].id"),
                "must be unique in the flow",
            );
        }
    }
    let starts: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].kind == FlowNodeKind::Start)
        .collect();
    match starts.as_slice() {
        [] => {
            return fail(
                "response.nodes",
                "exactly one start node is required (none)",
            );
        }
        [_] => {}
        [_, second, ..] => {
            return fail(
                format!("response.nodes[{second}].type"),
                "exactly one start node is allowed",
            );
        }
    }
    for (j, e) in edges.iter().enumerate() {
        if !ids.contains_key(e.source.as_str()) {
            return fail(
                format!("response.edges[{j}].source"),
                format!("no node has id {:?}", e.source),
            );
        }
        if !ids.contains_key(e.target.as_str()) {
            return fail(
                format!("response.edges[{j}].target"),
                format!("no node has id {:?}", e.target),
            );
        }
    }
    let has_edge = |id: &str, handle: Option<&str>| {
        edges.iter().any(|e| {
            e.source == id
                && match handle {
                    None => true,
                    Some(h) => e.source_handle.as_deref() == Some(h),
                }
        })
    };
    for (i, n) in nodes.iter().enumerate() {
        validate_node(i, n, &has_edge)?;
        let needs_way_on = !matches!(
            n.kind,
            FlowNodeKind::End | FlowNodeKind::Handover | FlowNodeKind::Ticket
        );
        if needs_way_on && !has_edge(&n.id, None) {
            return fail(
                format!("response.nodes[{i}]"),
                format!("a {} node needs an outgoing edge", n.kind.as_str()),
            );
        }
    }
    // Every node reachable from the start.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue = VecDeque::from([nodes[starts[0]].id.as_str()]);
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        for e in edges.iter().filter(|e| e.source == id) {
            queue.push_back(e.target.as_str());
        }
    }
    if let Some(i) = nodes.iter().position(|n| !seen.contains(n.id.as_str())) {
        return fail(
            format!("response.nodes[{i}]"),
            "is not reachable from the start node",
        );
    }
    Ok(())
}

fn validate_node(i: usize, n: &FlowNode, has_edge: &dyn Fn(&str, Option<&str>) -> bool) -> Check {
    let d = &n.data;
    let f = |field: &str| format!("response.nodes[{i}].data.{field}");
    let variable = |name: Option<&str>, needed: bool| -> Check {
        match name {
            None if needed => fail(f("variable"), "a variable name is required"),
            None => Ok(()),
            Some(v) if is_variable_name(v) => Ok(()),
            Some(_) => fail(
                f("variable"),
                "must be a name of lowercase letters, digits and _ (not starting with a digit, ≤ 32)",
            ),
        }
    };
    match n.kind {
        FlowNodeKind::Start | FlowNodeKind::End => {
            if let Some(t) = &d.text {
                at_most(|| f("text"), t, TEXT_BODY_MAX)?;
            }
        }
        FlowNodeKind::Message => {
            required(|| f("text"), d.text.as_deref().unwrap_or(""), TEXT_BODY_MAX)?
        }
        FlowNodeKind::Question => {
            required(
                || f("text"),
                d.text.as_deref().unwrap_or(""),
                INTERACTIVE_BODY_MAX,
            )?;
            variable(d.variable.as_deref(), false)?;
            optional(|| f("invalid"), d.invalid.as_deref(), TEXT_BODY_MAX)?;
            let opts = &d.options;
            if opts.is_empty() {
                return fail(f("options"), "at least one option is required");
            }
            if opts.len() > QUESTION_OPTIONS_MAX {
                return fail(
                    f("options"),
                    format!(
                        "at most {QUESTION_OPTIONS_MAX} options (got {})",
                        opts.len()
                    ),
                );
            }
            let title_max = if opts.len() <= REPLY_BUTTONS_MAX {
                REPLY_BUTTON_TITLE_MAX
            } else {
                LIST_ROW_TITLE_MAX
            };
            for (k, o) in opts.iter().enumerate() {
                let of = |x: &str| f(&format!("options[{k}].{x}"));
                required(|| of("id"), &o.id, LIST_ROW_ID_MAX)?;
                required(|| of("title"), &o.title, title_max)?;
                if opts[..k].iter().any(|p| p.id == o.id) {
                    return fail(of("id"), "must be unique in the question");
                }
                if opts[..k].iter().any(|p| p.title == o.title) {
                    return fail(of("title"), "must be unique in the question");
                }
                if !has_edge(&n.id, Some(&o.id)) {
                    return fail(
                        f(&format!("options[{k}]")),
                        format!("needs an edge with sourceHandle {:?}", o.id),
                    );
                }
            }
        }
        FlowNodeKind::Input => {
            required(|| f("text"), d.text.as_deref().unwrap_or(""), TEXT_BODY_MAX)?;
            variable(d.variable.as_deref(), true)?;
            optional(|| f("invalid"), d.invalid.as_deref(), TEXT_BODY_MAX)?;
        }
        FlowNodeKind::Condition => {
            for (k, c) in d.conditions.iter().enumerate() {
                let cf = |x: &str| f(&format!("conditions[{k}].{x}"));
                required(|| cf("id"), &c.id, 100)?;
                if c.id == ELSE_HANDLE {
                    return fail(cf("id"), "\"else\" is the handle of the fallback edge");
                }
                if d.conditions[..k].iter().any(|p| p.id == c.id) {
                    return fail(cf("id"), "must be unique in the node");
                }
                if !is_variable_name(c.variable.trim()) {
                    return fail(cf("variable"), "must be a flow variable name");
                }
                match c.op {
                    ConditionOp::Exists => {}
                    ConditionOp::GreaterThan | ConditionOp::LessThan => {
                        let v = c.value.as_deref().unwrap_or("");
                        if number(v).is_none() && !v.contains("{{") {
                            return fail(cf("value"), "must be a number");
                        }
                    }
                    _ => {
                        if c.value.is_none() {
                            return fail(cf("value"), "required for this operator");
                        }
                    }
                }
            }
            if !has_edge(&n.id, Some(ELSE_HANDLE)) {
                return fail(
                    format!("response.nodes[{i}]"),
                    "a condition node needs an edge with sourceHandle \"else\"",
                );
            }
        }
        FlowNodeKind::SetVariable => {
            variable(d.variable.as_deref(), true)?;
            if let Some(v) = &d.value {
                at_most(|| f("value"), v, TEXT_BODY_MAX)?;
            }
        }
        FlowNodeKind::Handover => {
            optional(|| f("text"), d.text.as_deref(), TEXT_BODY_MAX)?;
            optional(|| f("reason"), d.reason.as_deref(), 500)?;
        }
        FlowNodeKind::Ticket => {
            required(|| f("subject"), d.subject.as_deref().unwrap_or(""), 250)?;
            optional(|| f("description"), d.description.as_deref(), 10_000)?;
            optional(|| f("priority"), d.priority.as_deref(), 50)?;
            optional(|| f("text"), d.text.as_deref(), TEXT_BODY_MAX)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::model::{BotResponse, FlowChoice, FlowNodeData};
    use crate::bots::testutil::*;

    fn node(id: &str, kind: FlowNodeKind, data: FlowNodeData) -> FlowNode {
        FlowNode {
            id: id.into(),
            kind,
            data,
            position: None,
        }
    }

    fn edge(s: &str, t: &str, h: Option<&str>) -> FlowEdge {
        FlowEdge {
            id: format!("{s}-{t}-{}", h.unwrap_or("")),
            source: s.into(),
            target: t.into(),
            source_handle: h.map(String::from),
        }
    }

    fn field(nodes: &[FlowNode], edges: &[FlowEdge]) -> String {
        BotResponse::Flow {
            nodes: nodes.to_vec(),
            edges: edges.to_vec(),
        }
        .validate()
        .unwrap_err()
        .field
    }

    fn text(t: &str) -> FlowNodeData {
        FlowNodeData {
            text: Some(t.into()),
            ..Default::default()
        }
    }

    #[test]
    fn graph_rules() {
        let s = node("s", FlowNodeKind::Start, Default::default());
        let m = node("m", FlowNodeKind::Message, text("hi"));
        let e = node("e", FlowNodeKind::End, Default::default());
        let ok_edges = vec![edge("s", "m", None), edge("m", "e", None)];
        validate_flow(&[s.clone(), m.clone(), e.clone()], &ok_edges).unwrap();
        assert_eq!(field(&[], &[]), "response.nodes");
        assert_eq!(
            field(&[m.clone(), e.clone()], &[edge("m", "e", None)]),
            "response.nodes"
        );
        let mut s2 = s.clone();
        s2.id = "s2".into();
        assert_eq!(
            field(&[s.clone(), s2, m.clone(), e.clone()], &ok_edges),
            "response.nodes[1].type"
        );
        assert_eq!(
            field(&[s.clone(), m.clone(), m.clone(), e.clone()], &ok_edges),
            "response.nodes[2].id"
        );
        assert_eq!(
            field(
                &[s.clone(), m.clone(), e.clone()],
                &[edge("s", "m", None), edge("m", "x", None)]
            ),
            "response.edges[1].target"
        );
        assert_eq!(
            field(
                &[s.clone(), m.clone(), e.clone()],
                &[edge("s", "m", None), edge("y", "e", None)]
            ),
            "response.edges[1].source"
        );
        // A message without a way on.
        assert_eq!(
            field(
                &[s.clone(), m.clone(), e.clone()],
                &[edge("s", "m", None), edge("s", "e", None)]
            ),
            "response.nodes[1]"
        );
        // An unreachable node.
        let lone = node("lone", FlowNodeKind::End, Default::default());
        assert_eq!(
            field(&[s.clone(), m.clone(), e.clone(), lone], &ok_edges),
            "response.nodes[3]"
        );
        // Too many nodes.
        let mut many = vec![s.clone()];
        let mut es = vec![];
        for k in 0..200 {
            many.push(node(
                &format!("n{k}"),
                FlowNodeKind::End,
                Default::default(),
            ));
            es.push(edge("s", &format!("n{k}"), None));
        }
        assert_eq!(field(&many, &es), "response.nodes");
        // Empty message text.
        let mut empty = m.clone();
        empty.data.text = None;
        assert_eq!(
            field(&[s, empty, e], &ok_edges),
            "response.nodes[1].data.text"
        );
    }

    #[test]
    fn node_rules() {
        let s = node("s", FlowNodeKind::Start, Default::default());
        let e = node("e", FlowNodeKind::End, Default::default());
        let q = |opts: &[(&str, &str)]| {
            node(
                "q",
                FlowNodeKind::Question,
                FlowNodeData {
                    text: Some("Pick".into()),
                    options: opts
                        .iter()
                        .map(|(i, t)| FlowChoice {
                            id: i.to_string(),
                            title: t.to_string(),
                        })
                        .collect(),
                    ..Default::default()
                },
            )
        };
        let base = vec![edge("s", "q", None), edge("q", "e", Some("a"))];
        validate_flow(&[s.clone(), q(&[("a", "A")]), e.clone()], &base).unwrap();
        assert_eq!(
            field(&[s.clone(), q(&[("a", "A"), ("b", "B")]), e.clone()], &base),
            "response.nodes[1].data.options[1]"
        );
        assert_eq!(
            field(&[s.clone(), q(&[]), e.clone()], &base),
            "response.nodes[1].data.options"
        );
        assert_eq!(
            field(&[s.clone(), q(&[("a", "A"), ("a", "B")]), e.clone()], &base),
            "response.nodes[1].data.options[1].id"
        );
        assert_eq!(
            field(&[s.clone(), q(&[("a", &"t".repeat(21))]), e.clone()], &base),
            "response.nodes[1].data.options[0].title"
        );
        // Input needs a proper variable name.
        let input = |var: Option<&str>| {
            node(
                "i",
                FlowNodeKind::Input,
                FlowNodeData {
                    text: Some("Email?".into()),
                    variable: var.map(String::from),
                    ..Default::default()
                },
            )
        };
        let ie = vec![edge("s", "i", None), edge("i", "e", None)];
        validate_flow(&[s.clone(), input(Some("email")), e.clone()], &ie).unwrap();
        assert_eq!(
            field(&[s.clone(), input(None), e.clone()], &ie),
            "response.nodes[1].data.variable"
        );
        assert_eq!(
            field(&[s.clone(), input(Some("E-mail")), e.clone()], &ie),
            "response.nodes[1].data.variable"
        );
        // Condition needs an else edge.
        let c = node(
            "c",
            FlowNodeKind::Condition,
            FlowNodeData {
                conditions: vec![FlowCondition {
                    id: "big".into(),
                    variable: "n".into(),
                    op: ConditionOp::GreaterThan,
                    value: Some("10".into()),
                }],
                ..Default::default()
            },
        );
        let ce = vec![edge("s", "c", None), edge("c", "e", Some("big"))];
        assert_eq!(
            field(&[s.clone(), c.clone(), e.clone()], &ce),
            "response.nodes[1]"
        );
        let mut ce2 = ce.clone();
        ce2.push(edge("c", "e", Some("else")));
        validate_flow(&[s.clone(), c.clone(), e.clone()], &ce2).unwrap();
        let mut bad = c.clone();
        bad.data.conditions[0].value = Some("ten".into());
        assert_eq!(
            field(&[s.clone(), bad, e.clone()], &ce2),
            "response.nodes[1].data.conditions[0].value"
        );
        // Ticket needs a subject; it may end the flow.
        let t = node("t", FlowNodeKind::Ticket, Default::default());
        assert_eq!(
            field(&[s.clone(), t.clone()], &[edge("s", "t", None)]),
            "response.nodes[1].data.subject"
        );
    }

    #[test]
    fn inputs_are_checked_by_kind() {
        use InputValidation::*;
        assert_eq!(
            check_input(Email, " ada@example.com ").as_deref(),
            Some("ada@example.com")
        );
        assert!(check_input(Email, "ada@example").is_none());
        assert!(check_input(Email, "ada example.com").is_none());
        assert!(check_input(Email, "@example.com").is_none());
        assert_eq!(check_input(Number, "3,5").as_deref(), Some("3.5"));
        assert_eq!(check_input(Number, "-12").as_deref(), Some("-12"));
        assert!(check_input(Number, "twelve").is_none());
        assert!(check_input(Phone, "+34 600 11 22 33").is_some());
        assert!(check_input(Phone, "12345").is_none());
        assert!(check_input(Phone, "call me").is_none());
        assert!(check_input(Phone, "34+600112233").is_none());
        assert_eq!(
            check_input(Date, "2025-02-28").as_deref(),
            Some("2025-02-28")
        );
        assert_eq!(
            check_input(Date, "28/02/2025").as_deref(),
            Some("2025-02-28")
        );
        assert!(check_input(Date, "2025-02-30").is_none());
        assert!(check_input(Date, "tomorrow").is_none());
        assert!(check_input(Text, "  ").is_none());
        assert_eq!(check_input(Text, " hi ").as_deref(), Some("hi"));
    }

    #[test]
    fn a_cycle_without_a_waiting_node_stops() {
        let s = node("s", FlowNodeKind::Start, Default::default());
        let a = node("a", FlowNodeKind::Message, text("a"));
        let b = node("b", FlowNodeKind::Message, text("b"));
        let edges = vec![
            edge("s", "a", None),
            edge("a", "b", None),
            edge("b", "a", None),
        ];
        let nodes = vec![s, a, b];
        validate_flow(&nodes, &edges).unwrap();
        let f = fields();
        let c = customer(&f);
        let step = start(&nodes, &edges, &c, BTreeMap::new());
        assert_eq!(step.messages.len(), MAX_NODES_PER_STEP - 1);
        assert!(step.waiting.is_none());
    }
}

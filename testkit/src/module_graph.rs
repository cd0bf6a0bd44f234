//! Import cycles between the modules of a crate, found by reading its sources.
//!
//! Rust compiles a crate as one unit, so the compiler accepts modules that import each other;
//! the cycle only shows when someone tries to understand, test or split one of them alone. This
//! reads every module file reachable from the crate roots in `src` (`mod x;` as `x.rs`,
//! `x/mod.rs` or inline), collects the paths that name crate modules (`crate::a::b`, `super::`,
//! `self::`, and `use` of a child module), and reports the strongly connected components.
//!
//! What counts as a dependency:
//! - A reference to `crate::a::b::Item` is an edge to the longest existing module, `a::b`.
//! - An edge also holds for the enclosing modules on both sides, up to their common ancestor:
//!   if `x::y` uses `z`, then `x` uses `z`. A module is a unit with its children, so `error`
//!   importing `image` while `image::registry` imports `error` is a cycle.
//! - Edges between a module and its own ancestors or descendants are not counted (a parent
//!   declares and re-exports its children; a child uses its parent's items), nor are
//!   references to the crate root.
//! - Items and modules under `#[cfg(test)]` are skipped: tests may import anything.
//!
//! Paths inside macro invocations are found by scanning their tokens. A module named by a
//! `#[path]` attribute is read from that path, relative to the declaring file's directory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// Why a crate's module graph could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{declared_in}:{line}: module `{module}` has no file (tried {tried})")]
    MissingModule {
        declared_in: PathBuf,
        line: usize,
        module: String,
        tried: String,
    },
    #[error("{0} holds no crate root (lib.rs, main.rs or bin/*.rs)")]
    NoCrateRoot(PathBuf),
}

/// One place in the sources that makes a module depend on another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub file: PathBuf,
    pub line: usize,
    /// The source line, trimmed.
    pub text: String,
}

/// One step of a cycle: `from` depends on `to` because of `references`.
#[derive(Debug, Clone)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub references: Vec<Reference>,
}

/// A closed path through a strongly connected component of the module graph.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// The crate root the modules belong to (`src/lib.rs`, `src/main.rs`, ...).
    pub crate_root: PathBuf,
    /// Every module of the component, sorted.
    pub component: Vec<String>,
    /// The shortest cycle through the first module of the component.
    pub steps: Vec<Step>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path: Vec<&str> = self.steps.iter().map(|s| s.from.as_str()).collect();
        if let Some(first) = self.steps.first() {
            path.push(first.from.as_str());
        }
        writeln!(
            f,
            "module cycle in {}: {}",
            self.crate_root.display(),
            path.join(" -> ")
        )?;
        if self.component.len() > self.steps.len() {
            writeln!(
                f,
                "  (one of the cycles among {})",
                self.component.join(", ")
            )?;
        }
        for step in &self.steps {
            writeln!(f, "  {} -> {}:", step.from, step.to)?;
            for r in &step.references {
                writeln!(f, "    {}:{}: {}", r.file.display(), r.line, r.text)?;
            }
        }
        Ok(())
    }
}

/// The module cycles of every crate root in `src_dir` (a library, a binary, `bin/*.rs`); each
/// root is its own crate, so their module trees are checked apart.
pub fn find_cycles(src_dir: &Path) -> Result<Vec<Cycle>, GraphError> {
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|name| src_dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    let bin_dir = src_dir.join("bin");
    if bin_dir.is_dir() {
        let entries = std::fs::read_dir(&bin_dir).map_err(|source| GraphError::Read {
            path: bin_dir.clone(),
            source,
        })?;
        let mut bins: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs") || p.join("main.rs").is_file())
            .map(|p| if p.is_dir() { p.join("main.rs") } else { p })
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    if roots.is_empty() {
        return Err(GraphError::NoCrateRoot(src_dir.to_path_buf()));
    }
    let mut cycles = Vec::new();
    for root in roots {
        cycles.extend(ModuleGraph::read(&root)?.cycles());
    }
    Ok(cycles)
}

/// A module path below the crate root; the root itself is the empty path.
type ModPath = Vec<String>;

fn display(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// A path as written in a module, before it is resolved against the module tree.
struct RawRef {
    from: ModPath,
    segments: Vec<String>,
    /// From a `use` item: a first segment naming a child module is relative to `from`.
    is_use: bool,
    reference: Reference,
}

/// The modules of one crate root and the references between them.
pub struct ModuleGraph {
    crate_root: PathBuf,
    modules: BTreeSet<ModPath>,
    /// Lifted edges (see the module docs) with the references behind each.
    edges: BTreeMap<ModPath, BTreeMap<ModPath, BTreeSet<Reference>>>,
}

impl ModuleGraph {
    /// Reads the module tree below `crate_root` (a `lib.rs` or `main.rs`).
    pub fn read(crate_root: &Path) -> Result<Self, GraphError> {
        let mut reader = Reader::default();
        let dir = crate_root.parent().unwrap_or(Path::new(".")).to_path_buf();
        reader.modules.insert(Vec::new());
        reader.read_file(crate_root, &[], &dir)?;
        let mut graph = ModuleGraph {
            crate_root: crate_root.to_path_buf(),
            modules: reader.modules,
            edges: BTreeMap::new(),
        };
        for raw in reader.refs {
            if let Some(to) = graph.resolve(&raw) {
                graph.add_lifted(&raw.from, &to, raw.reference);
            }
        }
        Ok(graph)
    }

    /// Every module path, `crate` for the root.
    pub fn modules(&self) -> Vec<String> {
        self.modules.iter().map(|m| display(m)).collect()
    }

    /// Whether `from` depends on `to` (names as [`ModuleGraph::modules`] gives them).
    pub fn depends_on(&self, from: &str, to: &str) -> bool {
        self.edges
            .iter()
            .any(|(f, tos)| display(f) == from && tos.keys().any(|t| display(t) == to))
    }

    /// The module `raw` names, if it is one the graph counts.
    fn resolve(&self, raw: &RawRef) -> Option<ModPath> {
        let mut segments = raw.segments.iter().peekable();
        let mut absolute: ModPath = match segments.peek().map(|s| s.as_str()) {
            Some("crate") => {
                segments.next();
                Vec::new()
            }
            Some("self") => {
                segments.next();
                raw.from.clone()
            }
            Some("super") => {
                let mut base = raw.from.clone();
                while segments.peek().is_some_and(|s| *s == "super") {
                    segments.next();
                    base.pop()?;
                }
                base
            }
            Some(first) if raw.is_use => {
                let mut child = raw.from.clone();
                child.push(first.to_string());
                if !self.modules.contains(&child) {
                    return None;
                }
                raw.from.clone()
            }
            _ => return None,
        };
        let mut longest = absolute.clone();
        for s in segments {
            absolute.push(s.clone());
            if self.modules.contains(&absolute) {
                longest = absolute.clone();
            } else {
                break;
            }
        }
        let related = longest.starts_with(&raw.from) || raw.from.starts_with(&longest);
        (!longest.is_empty() && !related).then_some(longest)
    }

    /// `from` -> `to`, plus the same edge for their enclosing modules below the common ancestor.
    fn add_lifted(&mut self, from: &ModPath, to: &ModPath, reference: Reference) {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        for f in common + 1..=from.len() {
            for t in common + 1..=to.len() {
                self.edges
                    .entry(from[..f].to_vec())
                    .or_default()
                    .entry(to[..t].to_vec())
                    .or_default()
                    .insert(reference.clone());
            }
        }
    }

    /// Strongly connected components with more than one module, each as a cycle to print.
    pub fn cycles(&self) -> Vec<Cycle> {
        strongly_connected(&self.modules, &self.edges)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|component| {
                let steps = self.shortest_cycle(&component);
                Cycle {
                    crate_root: self.crate_root.clone(),
                    component: component.iter().map(|m| display(m)).collect(),
                    steps,
                }
            })
            .collect()
    }

    /// Breadth-first from the component's first module back to itself, inside the component.
    fn shortest_cycle(&self, component: &BTreeSet<ModPath>) -> Vec<Step> {
        let Some(start) = component.iter().next() else {
            return Vec::new();
        };
        let mut came_from: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(node) = queue.pop_front() {
            for next in self.edges.get(node).into_iter().flat_map(|e| e.keys()) {
                if !component.contains(next) {
                    continue;
                }
                if next == start {
                    last = Some(node);
                    break 'search;
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        let mut nodes = vec![start];
        let mut at = last;
        while let Some(node) = at.filter(|n| *n != start) {
            nodes.push(node);
            at = came_from.get(node).copied();
        }
        nodes[1..].reverse();
        nodes.push(start);
        nodes
            .windows(2)
            .map(|pair| Step {
                from: display(pair[0]),
                to: display(pair[1]),
                references: self
                    .edges
                    .get(pair[0])
                    .and_then(|e| e.get(pair[1]))
                    .map(|r| r.iter().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }
}

/// Tarjan's algorithm, iteratively (module trees are shallow, but recursion depth should not
/// depend on the input).
fn strongly_connected(
    nodes: &BTreeSet<ModPath>,
    edges: &BTreeMap<ModPath, BTreeMap<ModPath, BTreeSet<Reference>>>,
) -> Vec<BTreeSet<ModPath>> {
    let list: Vec<&ModPath> = nodes.iter().collect();
    let index_of: BTreeMap<&ModPath, usize> =
        list.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = list
        .iter()
        .map(|n| {
            edges
                .get(*n)
                .into_iter()
                .flat_map(|e| e.keys())
                .filter_map(|t| index_of.get(t).copied())
                .collect()
        })
        .collect();
    let n = list.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut next_index, mut stack, mut out) = (0, Vec::new(), Vec::new());
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its successor list)
        let mut work = vec![(root, 0)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && index[v] == usize::MAX {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = succ[v].get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.insert(list[w].clone());
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

#[derive(Default)]
struct Reader {
    modules: BTreeSet<ModPath>,
    refs: Vec<RawRef>,
}

impl Reader {
    /// Reads one module file; `children_dir` is where its `mod x;` files live.
    fn read_file(
        &mut self,
        file: &Path,
        module: &[String],
        children_dir: &Path,
    ) -> Result<(), GraphError> {
        let text = std::fs::read_to_string(file).map_err(|source| GraphError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        let ast = syn::parse_file(&text).map_err(|e| GraphError::Parse {
            path: file.to_path_buf(),
            message: format!("line {}: {e}", e.span().start().line),
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let source = Source {
            file,
            lines: &lines,
        };
        self.read_items(&ast.items, module, children_dir, &source)
    }

    fn read_items(
        &mut self,
        items: &[syn::Item],
        module: &[String],
        children_dir: &Path,
        source: &Source<'_>,
    ) -> Result<(), GraphError> {
        for item in items {
            match item {
                syn::Item::Mod(m) if is_cfg_test(&m.attrs) => {}
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    let mut child = module.to_vec();
                    child.push(name.clone());
                    self.modules.insert(child.clone());
                    let dir = children_dir.join(&name);
                    match &m.content {
                        Some((_, inner)) => self.read_items(inner, &child, &dir, source)?,
                        None => {
                            let file = self.module_file(m, children_dir, source)?;
                            // `x/mod.rs` and `#[path]` files keep their children beside them.
                            let own_dir = if file.file_name().is_some_and(|f| f == "mod.rs") {
                                file.parent().map(Path::to_path_buf).unwrap_or(dir)
                            } else {
                                dir
                            };
                            self.read_file(&file, &child, &own_dir)?;
                        }
                    }
                }
                other => {
                    let mut visitor = RefCollector {
                        module,
                        source,
                        found: Vec::new(),
                    };
                    visitor.visit_item(other);
                    self.refs.extend(visitor.found);
                }
            }
        }
        Ok(())
    }

    fn module_file(
        &self,
        m: &syn::ItemMod,
        children_dir: &Path,
        source: &Source<'_>,
    ) -> Result<PathBuf, GraphError> {
        let name = m.ident.to_string();
        let explicit = m.attrs.iter().find_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        });
        let candidates = match explicit {
            Some(p) => vec![source.file.parent().unwrap_or(Path::new(".")).join(p)],
            None => vec![
                children_dir.join(format!("{name}.rs")),
                children_dir.join(&name).join("mod.rs"),
            ],
        };
        candidates
            .iter()
            .find(|c| c.is_file())
            .cloned()
            .ok_or_else(|| GraphError::MissingModule {
                declared_in: source.file.to_path_buf(),
                line: m.ident.span().start().line,
                module: name,
                tried: candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

struct Source<'a> {
    file: &'a Path,
    lines: &'a [&'a str],
}

impl Source<'_> {
    fn reference(&self, line: usize) -> Reference {
        Reference {
            file: self.file.to_path_buf(),
            line,
            text: self
                .lines
                .get(line.saturating_sub(1))
                .map(|l| l.trim().to_string())
                .unwrap_or_default(),
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// The module-relative paths one item mentions.
struct RefCollector<'a> {
    module: &'a [String],
    source: &'a Source<'a>,
    found: Vec<RawRef>,
}

impl RefCollector<'_> {
    fn push(&mut self, segments: Vec<String>, line: usize, is_use: bool) {
        self.found.push(RawRef {
            from: self.module.to_vec(),
            segments,
            is_use,
            reference: self.source.reference(line),
        });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(g) => {
                let line = g.star_token.span.start().line;
                self.push(prefix.clone(), line, true);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut segments = prefix.to_vec();
        // `use super::{self, x}`: `self` names the prefix itself.
        if ident != "self" {
            segments.push(ident.to_string());
        }
        self.push(segments, ident.span().start().line, true);
    }

    /// `crate :: a :: b` (or `super`/`self`) sequences in a macro's tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id)
                    if (id == "crate" || id == "super" || id == "self")
                        && is_colons(&trees, i + 1) =>
                {
                    let line = id.span().start().line;
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while is_colons(&trees, j) {
                        match trees.get(j + 2) {
                            Some(TokenTree::Ident(next)) => {
                                segments.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    self.push(segments, line, false);
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

fn is_colons(trees: &[TokenTree], at: usize) -> bool {
    matches!(
        (trees.get(at), trees.get(at + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && b.as_char() == ':'
    )
}

impl<'ast> Visit<'ast> for RefCollector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    // A module inside a function body has its own path; such modules are rare enough to skip.
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(first) = path.segments.first() {
            let word = first.ident.to_string();
            if (word == "crate" || word == "super" || word == "self") && path.segments.len() > 1 {
                let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
                self.push(segments, first.ident.span().start().line, false);
            }
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn a_cycle_between_two_modules_is_reported_with_its_use_lines() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod a;\nmod b;\n"),
                ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
                (
                    "b.rs",
                    "pub struct B;\nfn f() -> Option<crate::a::A> { None }\n",
                ),
            ],
        );
        let cycles = find_cycles(dir.path()).unwrap();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].component, ["a", "b"]);
        let text = cycles[0].to_string();
        assert!(text.contains("a -> b -> a"), "{text}");
        assert!(text.contains("a.rs:1: use crate::b::B;"), "{text}");
        assert!(
            text.contains("b.rs:2: fn f() -> Option<crate::a::A> { None }"),
            "{text}"
        );
    }

    #[test]
    fn a_module_importing_a_child_of_one_that_imports_it_is_a_cycle() {
        // The deployer's old shape: error imports image, image/registry.rs imports error.
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "pub mod error;\npub mod image;\n"),
                ("error.rs", "use crate::image::ImageError;\npub struct E;\n"),
                ("image.rs", "mod registry;\npub struct ImageError;\n"),
                ("image/registry.rs", "use crate::error::E;\n"),
            ],
        );
        let cycles = find_cycles(dir.path()).unwrap();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        let text = cycles[0].to_string();
        assert!(text.contains("error -> image -> error"), "{text}");
        assert!(
            text.contains("registry.rs:1: use crate::error::E;"),
            "{text}"
        );
    }

    #[test]
    fn parents_children_the_root_and_test_modules_make_no_cycle() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "pub mod p;\npub mod q;\npub struct Root;\n"),
                // The parent re-exports its child; the child uses the parent and the root.
                (
                    "p.rs",
                    "mod c;\npub use c::C;\npub use self::c::C as D;\npub struct P;\n\
                     #[cfg(test)]\nmod tests {\n    use crate::q::Q;\n}\n",
                ),
                (
                    "p/c.rs",
                    "use super::P;\npub struct C(crate::p::P, crate::Root);\n",
                ),
                // mod.rs layout; a grandchild reaches a sibling of its grandparent.
                ("q/mod.rs", "mod d;\npub struct Q;\n"),
                (
                    "q/d.rs",
                    "use super::super::p::P;\nfn f() { let _ = format!(\"{:?}\", std::any::type_name::<super::Q>()); }\n\
                     #[cfg(test)]\nfn helper() -> crate::q::Q { crate::q::Q }\n",
                ),
            ],
        );
        let root = dir.path().join("lib.rs");
        let graph = ModuleGraph::read(&root).unwrap();
        assert_eq!(graph.modules(), ["crate", "p", "p::c", "q", "q::d"]);
        assert!(graph.depends_on("q::d", "p"));
        assert!(
            graph.depends_on("q", "p"),
            "edges hold for the enclosing module"
        );
        assert!(
            !graph.depends_on("p", "q"),
            "the test module's import does not count"
        );
        assert!(
            !graph.depends_on("p::c", "p"),
            "child to parent does not count"
        );
        assert!(graph.cycles().is_empty(), "{:?}", graph.cycles());
    }

    #[test]
    fn paths_inside_macros_count() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod a;\nmod b;\n"),
                (
                    "a.rs",
                    "pub fn f() { println!(\"{}\", crate::b::name()); }\n",
                ),
                (
                    "b.rs",
                    "pub fn name() -> &'static str { \"b\" }\nuse crate::a::f;\n",
                ),
            ],
        );
        let cycles = find_cycles(dir.path()).unwrap();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
    }

    #[test]
    fn a_missing_module_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("main.rs", "mod gone;\nfn main() {}\n")]);
        let err = find_cycles(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("module `gone` has no file"),
            "{err}"
        );
    }
}

// GroupTree and GroupNode (src/policy/group_tree.hpp, group_node.hpp) on their own: the
// root, parent/child links (G2), unique names, the refusals of make() (UsageError), the
// lifetime rules (G4: anonymous groups leave the tree with their last holder, named ones
// stay until release()), metrics' order, task names, and a concurrent stress test of
// make/drop against readers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "policy/group_tree.hpp"
#include "test_support.hpp"
#include "vitte/error.hpp"

using vitte::GroupSpec;
using vitte::Policy;
using vitte::UsageError;
using vitte::detail::GroupNode;
using vitte::detail::GroupTree;

namespace {

GroupSpec spec(const std::string& name, const std::string& parent = "", double weight = 1.0,
               Policy policy = Policy::Fifo) {
  GroupSpec s;
  s.name = name;
  s.parent = parent;
  s.weight = weight;
  s.policy = policy;
  return s;
}

// A tree released at the end of the test (named groups hold the tree: release breaks it).
struct Tree {
  explicit Tree(Policy root = Policy::Fair, std::size_t nodes = 2) : t(vitte::detail::make_tree(nodes, root)) {}
  ~Tree() { t->release(); }
  GroupTree* operator->() const { return t.get(); }
  std::shared_ptr<GroupTree> t;
};

// prefix + i (built by appending: GCC 12's -Wrestrict misfires on "literal" + std::string).
std::string numbered(const char* prefix, std::size_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

bool has_child(const GroupNode& parent, const GroupNode* child) {
  return std::find(parent.children.begin(), parent.children.end(), child) != parent.children.end();
}

}  // namespace

// The root is level 0: no name, no parent, the root policy, no children yet.
TEST(GroupTree, RootIsTheArenaLevel) {
  Tree t(Policy::Priority);
  const auto& root = t->root();
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->is_root());
  EXPECT_EQ(root->id, 0u);
  EXPECT_EQ(root->name, "");
  EXPECT_EQ(root->policy, Policy::Priority);
  EXPECT_EQ(root->parent, nullptr);
  EXPECT_TRUE(root->priority_path);
  EXPECT_TRUE(root->children.empty());
  EXPECT_EQ(root->tree(), nullptr) << "the root must not hold its tree (no cycle)";
}

// make() links a level under the root or under a named parent (G2), with a unique id, and
// find() returns the named ones.
TEST(GroupTree, MakeLinksParentAndChild) {
  Tree t;
  const auto p = t->make(spec("p", "", 2.0, Policy::Fair));
  const auto c = t->make(spec("c", "p", 3.0));
  const auto anon = t->make(spec("", "p"));
  EXPECT_EQ(p->parent, t->root().get());
  EXPECT_EQ(c->parent, p.get());
  EXPECT_EQ(anon->parent, p.get());
  EXPECT_TRUE(has_child(*t->root(), p.get()));
  EXPECT_TRUE(has_child(*p, c.get()));
  EXPECT_TRUE(has_child(*p, anon.get()));
  EXPECT_FALSE(has_child(*t->root(), c.get())) << "a grandchild is not the root's child";
  EXPECT_EQ(p->weight, 2.0);
  EXPECT_EQ(c->weight, 3.0);
  EXPECT_EQ(c->tree(), t.t.get());
  EXPECT_NE(p->id, c->id);
  EXPECT_NE(c->id, anon->id);
  EXPECT_NE(p->id, 0u);
  EXPECT_EQ(t->find("p"), p);
  EXPECT_EQ(t->find("c"), c);
  EXPECT_EQ(t->find("nope"), nullptr);
  EXPECT_EQ(t->find(""), nullptr) << "anonymous groups are not registered";
}

// Names are unique in the whole tree, whatever the parent; a refused make() leaves no trace.
TEST(GroupTree, NamesAreUniqueAcrossTheTree) {
  Tree t;
  const auto p = t->make(spec("p", "", 1.0, Policy::Fair));
  const auto x = t->make(spec("x", "p"));
  EXPECT_THROW(t->make(spec("x")), UsageError);
  EXPECT_THROW(t->make(spec("x", "p")), UsageError);
  EXPECT_THROW(t->make(spec("p", "x")), UsageError);
  EXPECT_EQ(t->root()->children.size(), 1u);
  EXPECT_EQ(p->children.size(), 1u);
  EXPECT_EQ(x->children.size(), 0u);
  EXPECT_EQ(t->find("x"), x);
  // Anonymous groups may be many.
  const auto a1 = t->make(spec(""));
  const auto a2 = t->make(spec(""));
  EXPECT_NE(a1, a2);
}

// Names: at most 64 bytes of UTF-8 (it goes into JSON and Prometheus labels), no control
// characters; anything else (spaces, accents, emoji) is fine.
TEST(GroupTree, RefusesBadNames) {
  Tree t;
  EXPECT_NO_THROW(t->make(spec(std::string(64, 'n'))));
  EXPECT_THROW(t->make(spec(std::string(65, 'm'))), UsageError);
  for (const std::string& bad : {std::string("tab\there"), std::string("new\nline"), std::string("a\0b", 3),
                                 std::string("del\x7f"), std::string("esc\x1b")})
    EXPECT_THROW(t->make(spec(bad)), UsageError) << bad;
  // Not UTF-8: a stray byte, a cut sequence, an overlong form, a surrogate, past U+10FFFF.
  for (const std::string& bad : {std::string("\xff"), std::string("caf\xc3"), std::string("\xc0\xaf"),
                                 std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")})
    EXPECT_THROW(t->make(spec(bad)), UsageError) << bad.size() << " bytes";
  EXPECT_NO_THROW(t->make(spec("with space")));
  EXPECT_NO_THROW(t->make(spec("\xc3\xa9t\xc3\xa9")));  // "été"
  EXPECT_NO_THROW(t->make(spec("\xf0\x9f\x98\x80")));   // U+1F600
  EXPECT_EQ(t->root()->children.size(), 4u) << "refused names leave no level behind";
}

// Weights: finite, from kMinWeight to kMaxWeight (NaN, infinities, zero, negatives out).
TEST(GroupTree, RefusesBadWeights) {
  Tree t(Policy::Fair);
  const double inf = std::numeric_limits<double>::infinity();
  for (double w : {0.0, -1.0, std::nan(""), inf, -inf, GroupSpec::kMinWeight / 2, GroupSpec::kMaxWeight * 2})
    EXPECT_THROW(t->make(spec("", "", w)), UsageError) << w;
  EXPECT_NO_THROW(t->make(spec("", "", GroupSpec::kMinWeight)));
  EXPECT_NO_THROW(t->make(spec("", "", GroupSpec::kMaxWeight)));
}

// A weight only applies under a Fair parent: any other weight is refused elsewhere, and
// so is a weight a config file named (weight_given), even 1.
TEST(GroupTree, RefusesAWeightThatWouldNotApply) {
  Tree t(Policy::Fifo);
  EXPECT_THROW(t->make(spec("a", "", 2.0)), UsageError);
  EXPECT_THROW(t->make(spec("b", "", 1.0), /*weight_given=*/true), UsageError);
  EXPECT_NO_THROW(t->make(spec("c", "", 1.0)));
  const auto fair = t->make(spec("fair", "", 1.0, Policy::Fair));
  EXPECT_NO_THROW(t->make(spec("d", "fair", 2.0), /*weight_given=*/true));
  EXPECT_THROW(t->make(spec("e", "c", 0.5)), UsageError) << "c is a Fifo level";
  EXPECT_EQ(t->find("a"), nullptr);
  EXPECT_EQ(t->find("b"), nullptr);
}

// An unknown parent and a policy value outside the enum are refused.
TEST(GroupTree, RefusesUnknownParentsAndPolicies) {
  Tree t;
  EXPECT_THROW(t->make(spec("a", "nobody")), UsageError);
  GroupSpec s = spec("b");
  s.policy = static_cast<Policy>(4);
  EXPECT_THROW(t->make(s), UsageError);
  EXPECT_TRUE(t->root()->children.empty());
}

// priority_path: this level and every level above it are Priority levels.
TEST(GroupTree, PriorityPathNeedsPriorityAllTheWayUp) {
  Tree t(Policy::Priority);
  const auto p = t->make(spec("p", "", 1.0, Policy::Priority));
  const auto pp = t->make(spec("pp", "p", 1.0, Policy::Priority));
  const auto f = t->make(spec("f", "p", 1.0, Policy::Fifo));
  const auto fp = t->make(spec("fp", "f", 1.0, Policy::Priority));
  EXPECT_TRUE(p->priority_path);
  EXPECT_TRUE(pp->priority_path);
  EXPECT_FALSE(f->priority_path);
  EXPECT_FALSE(fp->priority_path) << "a Fifo level above it";
  Tree fair(Policy::Fair);
  EXPECT_FALSE(fair->make(spec("", "", 1.0, Policy::Priority))->priority_path);
}

// G4: an anonymous group leaves its parent's children when its last holder lets go, and
// only that one.
TEST(GroupTree, AnonymousGroupsUnlinkWithTheirLastHolder) {
  Tree t;
  auto stays = t->make(spec(""));
  auto goes = t->make(spec(""));
  auto also = goes;  // two holders
  EXPECT_EQ(t->root()->children.size(), 2u);
  goes.reset();
  EXPECT_EQ(t->root()->children.size(), 2u) << "one holder is left";
  also.reset();
  ASSERT_EQ(t->root()->children.size(), 1u);
  EXPECT_EQ(t->root()->children[0], stays.get());

  // A child of a named group, holding it; the child goes, the named group stays.
  auto named = t->make(spec("named", "", 1.0, Policy::Fair));
  auto kid = t->make(spec("", "named"));
  EXPECT_EQ(named->children.size(), 1u);
  kid.reset();
  EXPECT_TRUE(named->children.empty());
}

// G4: a parent stays linked while a child holds it, even when nobody else does.
TEST(GroupTree, AChildKeepsItsParentAlive) {
  Tree t;
  auto parent = t->make(spec("p", "", 1.0, Policy::Fair));
  auto child = t->make(spec("", "p"));
  parent.reset();
  ASSERT_EQ(t->root()->children.size(), 1u);
  EXPECT_EQ(child->parent, t->root()->children[0]);
  EXPECT_EQ(child->parent->name, "p");
}

// G4: named groups are held by the tree until release(); a handle still held after
// release() stays usable, and dropping it then unlinks it without trouble.
TEST(GroupTree, NamedGroupsStayUntilRelease) {
  auto tree = vitte::detail::make_tree(1, Policy::Fair);
  std::weak_ptr<GroupNode> dropped = tree->make(spec("dropped"));
  auto kept = tree->make(spec("kept"));
  EXPECT_FALSE(dropped.expired()) << "the tree holds a named group";
  EXPECT_EQ(tree->find("dropped"), dropped.lock());
  tree->release();
  EXPECT_TRUE(dropped.expired()) << "release() lets go of the named groups";
  EXPECT_EQ(tree->root(), nullptr);
  EXPECT_TRUE(tree->metrics(0).empty());
  EXPECT_EQ(tree->find("kept"), nullptr);
  EXPECT_EQ(kept->name, "kept");
  EXPECT_TRUE(kept->parent->is_root()) << "the root lives on through its child";
  kept.reset();
}

// metrics(): every live group once, the root first (as ""), parents before children,
// with its parent's name; dropped anonymous groups are gone.
TEST(GroupTree, MetricsListParentsBeforeChildren) {
  Tree t;
  const auto a = t->make(spec("a", "", 1.0, Policy::Fair));
  const auto b = t->make(spec("b", "a", 2.0));
  const auto c = t->make(spec("c", "b"));
  auto gone = t->make(spec("", "a"));
  gone.reset();
  const auto m = t->metrics(0);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].id, 0u);
  EXPECT_EQ(m[0].name, "");
  auto pos = [&](const std::string& n) {
    return std::find_if(m.begin(), m.end(), [&](const auto& g) { return g.name == n; }) - m.begin();
  };
  EXPECT_LT(pos("a"), pos("b"));
  EXPECT_LT(pos("b"), pos("c"));
  EXPECT_EQ(m[pos("b")].parent, "a");
  EXPECT_EQ(m[pos("b")].weight, 2.0);
  EXPECT_EQ(m[pos("a")].parent, "");
}

// Each NUMA node has its own Level of every group.
TEST(GroupTree, EachNodeHasItsOwnLevel) {
  Tree t(Policy::Fair, 3);
  const auto g = t->make(spec("g"));
  g->at(0).queued = 1;
  g->at(2).vtime = 5;
  EXPECT_EQ(g->at(1).queued, 0u);
  EXPECT_EQ(g->at(1).vtime, 0);
  EXPECT_NE(&g->at(0), &g->at(1));
  EXPECT_NE(&t->node_lock(0), &t->node_lock(1));
  g->at(0).queued = 0;
}

// intern_name: one TaskName per name (stable address); past kMaxNames, the overflow name.
// named() lists, in the order they were made, only the names whose work ran.
TEST(GroupTree, InternNameIsStableAndBounded) {
  Tree t;
  const auto g = t->make(spec("g"));
  auto* first = g->intern_name("work");
  EXPECT_EQ(g->intern_name("work"), first);
  EXPECT_EQ(first->name, "work");
  for (std::size_t i = 1; i < vitte::GroupMetrics::kMaxNames; ++i) g->intern_name(numbered("n", i));
  EXPECT_EQ(g->intern_name("work"), first) << "the first name never moved";
  auto* over = g->intern_name("one too many");
  EXPECT_EQ(over->name, vitte::GroupMetrics::kOtherNames);
  EXPECT_EQ(g->intern_name("another"), over);
  EXPECT_TRUE(g->named().empty()) << "no work of any name ran yet";
  over->failed.fetch_add(1);
  first->runs.fetch_add(2);
  const auto named = g->named();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].name, "work");
  EXPECT_EQ(named[0].runs, 2u);
  EXPECT_EQ(named[1].name, vitte::GroupMetrics::kOtherNames);
  EXPECT_EQ(named[1].failed, 1u);
}

// Two threads race to make the same names (each made once, the loser gets UsageError),
// and make and drop anonymous children, while a third reads metrics() and find(). After
// the anonymous ones are dropped only the named groups remain linked (G2, G4).
TEST(GroupTreeStress, ConcurrentMakeDropAndReadKeepTheTreeConsistent) {
  const std::size_t names = vitte::test::scaled(5000);
  Tree t(Policy::Fair, 2);
  std::atomic<std::size_t> made{0}, refused{0};
  std::atomic<bool> writers_done{false};
  auto writer = [&](int self) {
    for (std::size_t i = 0; i < names; ++i) {
      try {
        t->make(spec(numbered("g", i), "", 1.0, Policy::Fair));
        made.fetch_add(1);
      } catch (const UsageError&) {
        refused.fetch_add(1);
      }
      // An anonymous child of a named group, dropped at once (unlink under every lock).
      auto anon = t->make(spec("", numbered("g", i), 1.0 + self));
      EXPECT_EQ(anon->parent->name, numbered("g", i));
    }
  };
  std::size_t reads = 0;
  std::thread reader([&] {
    do {
      const auto m = t->metrics(0);
      EXPECT_FALSE(m.empty());
      EXPECT_EQ(m[0].name, "");
      (void)t->find("g0");
      ++reads;
    } while (!writers_done.load());
  });
  std::thread w0(writer, 0), w1(writer, 1);
  w0.join();
  w1.join();
  writers_done.store(true);
  reader.join();

  EXPECT_EQ(made.load(), names) << "a name made twice, or never";
  EXPECT_EQ(refused.load(), names);
  EXPECT_EQ(t->root()->children.size(), names);
  for (GroupNode* g : t->root()->children) EXPECT_TRUE(g->children.empty()) << g->name;
  EXPECT_EQ(t->metrics(0).size(), names + 1);
  EXPECT_GT(reads, 0u);
}

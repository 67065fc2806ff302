// libpq_test: libpq's blocking API against a real PostgreSQL server runs
// concurrently in greenlets when the program links libmoss_patch. The pool
// test is the seed's aiomysql pool (select and insert concurrently), done
// with a moss::queue of connections.
#include <moss/moss.hpp>

#include "fixtures/postgres.hpp"
#include "leak_check.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

class WithPostgres : public moss_test::WithHub {
 protected:
  static void SetUpTestSuite() { server_ = new moss_test::postgres_server; }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static moss_test::postgres_server* server_;
};
moss_test::postgres_server* WithPostgres::server_ = nullptr;

struct conn_closer {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using connection = std::unique_ptr<PGconn, conn_closer>;

connection connect(const std::string& info) {
  connection c(PQconnectdb(info.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(c.get()));
  return c;
}

// Runs one statement the ordinary blocking way; returns the first value.
std::string query(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
  else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) out = std::string("error: ") + PQerrorMessage(c);
  PQclear(r);
  return out;
}

}  // namespace

TEST_F(WithPostgres, TwentyGreenletsEachRunPgSleepConcurrently) {
  constexpr int n = 20;
  std::vector<connection> conns;
  for (int i = 0; i < n; ++i) conns.push_back(connect(server_->conninfo()));
  auto t0 = clk::now();
  std::vector<moss::task<std::string>> ts;
  for (int i = 0; i < n; ++i)
    ts.push_back(moss::spawn([&, i] { return query(conns[i].get(), "SELECT pg_sleep(0.2), " + std::to_string(i)); }));
  for (auto& t : ts) EXPECT_EQ(t.get(), "");  // pg_sleep returns void: an empty text
  auto took = clk::now() - t0;
  EXPECT_LT(took, 2s) << "sequential would be 4 s";
}

TEST_F(WithPostgres, ConnectingIsCooperativeToo) {
  constexpr int n = 10;
  std::vector<moss::task<std::string>> ts;
  for (int i = 0; i < n; ++i)
    ts.push_back(moss::spawn([&] {
      connection c = connect(server_->conninfo());
      return query(c.get(), "SELECT 40 + 2");
    }));
  for (auto& t : ts) EXPECT_EQ(t.get(), "42");
}

TEST_F(WithPostgres, APoolOfConnectionsServesConcurrentSelectsAndInserts) {
  {
    connection setup = connect(server_->conninfo());
    ASSERT_EQ(query(setup.get(), "DROP TABLE IF EXISTS seed; CREATE TABLE seed (id int, name text)"), "");
  }
  // The pool: four connections handed out through a queue.
  moss::queue<PGconn*> pool;
  std::vector<connection> owned;
  for (int i = 0; i < 4; ++i) {
    owned.push_back(connect(server_->conninfo()));
    pool.put(owned.back().get());
  }
  auto with_conn = [&pool](const std::string& sql) {
    PGconn* c = pool.get();
    std::string r = query(c, sql);
    pool.put(c);
    return r;
  };
  auto t0 = clk::now();
  std::vector<moss::task<std::string>> ts;
  for (int i = 0; i < 8; ++i) {
    ts.push_back(moss::spawn(with_conn, "INSERT INTO seed VALUES (" + std::to_string(i) + ", 'n" + std::to_string(i) + "'); SELECT pg_sleep(0.1)"));
    ts.push_back(moss::spawn(with_conn, std::string("SELECT pg_sleep(0.1)")));
  }
  for (auto& t : ts) EXPECT_EQ(t.get().rfind("error", 0), std::string::npos);
  auto took = clk::now() - t0;
  EXPECT_LT(took, 1500ms) << "16 statements of 100 ms over 4 connections: ~400 ms";
  EXPECT_GE(took, 350ms);
  EXPECT_EQ(with_conn("SELECT count(*) FROM seed"), "8");
}

TEST_F(WithPostgres, ABadQueryIsLibpqsUsualError) {
  connection c = connect(server_->conninfo());
  auto t = moss::spawn([&] { return query(c.get(), "SELEC nonsense"); });
  EXPECT_NE(t.get().find("syntax error"), std::string::npos);
}

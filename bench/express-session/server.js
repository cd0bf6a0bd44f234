// The comparison point of bench/session-vs-express.sh: Express + express-session +
// connect-pg-simple, the standard recipe, one worker process per core (node:cluster), like the
// data-processor's runtime uses every core.
//   PORT, DATABASE_URL, WORKERS (default: cores)
//   POST /login   -> sets req.session.user (no password check: only the session read is measured)
//   GET /session  -> 200 {"user": ...} or 401, like GET /api/v1/session
const cluster = require("node:cluster");
const os = require("node:os");

const workers = Number(process.env.WORKERS || os.availableParallelism());
if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const express = require("express");
  const session = require("express-session");
  const PgStore = require("connect-pg-simple")(session);
  const { Pool } = require("pg");

  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
  const app = express();
  app.use(
    session({
      store: new PgStore({ pool, tableName: "session", createTableIfMissing: true }),
      secret: "bench-only-not-a-secret",
      resave: false,
      saveUninitialized: false,
      // The same idle timeout as data-processor's default (30 min).
      cookie: { httpOnly: true, sameSite: "lax", secure: false, maxAge: 30 * 60 * 1000 },
      name: "sid",
    }),
  );
  app.post("/login", (req, res) => {
    req.session.user = { id: "00000000-0000-0000-0000-000000000001", username: "bench-user" };
    res.json({ user: req.session.user });
  });
  app.get("/session", (req, res) => {
    if (!req.session.user) return res.status(401).json({ title: "Unauthorized" });
    res.json({ user: req.session.user });
  });
  app.listen(Number(process.env.PORT), "127.0.0.1");
}

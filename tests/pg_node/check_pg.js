// node-postgres (npm `pg`) through ficus's PostgreSQL proxy: SCRAM-SHA-256, the simple and the
// extended protocol, named prepared statements used by several clients at once (so in
// transaction mode they run on whichever server connection is free), a transaction and an error
// that leaves the connection usable. Prints one JSON line; exits non-zero on any failure.
// Usage: node check_pg.js PORT USER PASSWORD DATABASE
'use strict';
const { Client } = require('pg');

async function main() {
  const [port, user, password, database] = process.argv.slice(2);
  const connect = async () => {
    const c = new Client({ host: '127.0.0.1', port: Number(port), user, password, database,
                           ssl: false, connectionTimeoutMillis: 10000 });
    await c.connect();
    return c;
  };
  const out = {};
  const clients = await Promise.all([0, 1, 2, 3].map(connect));
  const a = clients[0];
  out.simple = (await a.query('SELECT 41 + 1 AS n')).rows[0].n;
  out.extended = (await a.query('SELECT name FROM items WHERE id = $1', [5])).rows[0].name;
  // A named statement, prepared once per client and executed many times, four clients at once.
  let prepared = 0;
  await Promise.all(clients.map(async (c, k) => {
    for (let i = 1; i <= 25; i++) {
      const id = ((i + k) % 100) + 1;
      const r = await c.query({ name: 'item-by-id', text: 'SELECT id, name FROM items WHERE id = $1',
                                values: [id] });
      if (r.rows.length !== 1 || r.rows[0].id !== id || r.rows[0].name !== 'item ' + id)
        throw new Error('wrong row for ' + id + ': ' + JSON.stringify(r.rows));
      prepared++;
    }
  }));
  out.prepared = prepared;
  // A transaction keeps its server connection until COMMIT/ROLLBACK.
  await a.query('BEGIN');
  await a.query('UPDATE items SET name = $1 WHERE id = $2', ['changed', 7]);
  const inside = (await a.query('SELECT name FROM items WHERE id = 7')).rows[0].name;
  await a.query('ROLLBACK');
  const after = (await a.query('SELECT name FROM items WHERE id = 7')).rows[0].name;
  out.transaction = [inside, after];
  // An error in the extended protocol, then the same connection goes on.
  try {
    await a.query('SELECT * FROM no_such_table WHERE id = $1', [1]);
    out.error = 'none';
  } catch (e) {
    out.error = e.code;
  }
  out.after_error = (await a.query({ name: 'item-by-id', text: 'SELECT id, name FROM items WHERE id = $1',
                                     values: [9] })).rows[0].name;
  await Promise.all(clients.map((c) => c.end()));
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.log(JSON.stringify({ failed: String(e && e.stack || e) }));
  process.exit(1);
});

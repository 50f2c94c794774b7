// Google's own BigQuery Node client (@google-cloud/bigquery) against the fake BigQuery, unchanged.
//
// Usage: node bigquery_client.mjs PLAN_JSON, where the plan names a scenario, the project and dataset, and the data
// and expectations of that scenario (suites/tests/conformance/node_bigquery.rs writes it). The client finds the
// fake the way a user's code would in front of an emulator: BIGQUERY_EMULATOR_HOST, which the test sets. Each
// scenario makes the calls a real user would make, asserts what real BigQuery would answer, and prints one JSON
// line with what it saw. Any mismatch exits with status 1 and a message naming the call; the Rust test then
// checks the fake's side (stored rows, request log).
//
// The packages come from target/conformance-node (scripts/setup-node.sh installs the pinned lockfile there). An
// ES module resolves bare imports next to itself only, so the client is required from that directory.

import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {createRequire} from 'node:module';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {isDeepStrictEqual} from 'node:util';

const require = createRequire(new URL('../../target/conformance-node/package.json', import.meta.url));
const {BigQuery} = require('@google-cloud/bigquery');
const {PassThroughClient} = require('google-auth-library');

class Mismatch extends Error {}

function expectEqual(what, got, want) {
  if (!isDeepStrictEqual(got, want)) {
    throw new Mismatch(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
}

function expect(what, condition, detail = '') {
  if (!condition) {
    throw new Mismatch(detail ? `${what}: ${detail}` : what);
  }
}

/** `call()` must reject with HTTP `status` and `errors[0].reason == reason`, as the client's ApiError carries them. */
async function expectError(what, status, reason, call) {
  try {
    await call();
  } catch (error) {
    expectEqual(`${what}: HTTP status`, error.code, status);
    const reasons = (error.errors || []).map(item => item.reason);
    expectEqual(`${what}: error reasons`, reasons.slice(0, 1), [reason]);
    return {status: error.code, reason, message: error.message};
  }
  throw new Mismatch(`${what}: no error, expected HTTP ${status} ${reason}`);
}

/**
 * A client as a user points one at an emulator: the project named, the endpoint from BIGQUERY_EMULATOR_HOST, and
 * google-auth-library's PassThroughClient, its documented client for emulators. Without it the client looks for
 * Application Default Credentials (a developer's gcloud login, the GCE metadata server, warning when there is
 * none) and would send a real Google token to the fake when it found one.
 */
function client(plan) {
  expect('BIGQUERY_EMULATOR_HOST is set', Boolean(process.env.BIGQUERY_EMULATOR_HOST));
  return new BigQuery({projectId: plan.project, authClient: new PassThroughClient()});
}

const CANDLE_SCHEMA = [
  {name: 'exchange', type: 'STRING', mode: 'REQUIRED'},
  {name: 'symbol', type: 'STRING', mode: 'REQUIRED'},
  {name: 'open_time', type: 'TIMESTAMP', mode: 'REQUIRED'},
  {name: 'close', type: 'FLOAT'},
  {name: 'trade_count', type: 'INTEGER'},
];

async function createCandlesTable(dataset, name) {
  const [table] = await dataset.createTable(name, {
    schema: CANDLE_SCHEMA,
    timePartitioning: {type: 'DAY', field: 'open_time'},
    clustering: {fields: ['exchange', 'symbol']},
  });
  return table;
}

/** A row as the plan spells it: TIMESTAMP as RFC 3339 with `Z` and whole seconds, the other scalars as they are. */
function comparable(row) {
  const out = {};
  for (const [key, value] of Object.entries(row)) {
    const isTimestamp = value && typeof value === 'object' && value.constructor.name === 'BigQueryTimestamp';
    out[key] = isTimestamp ? new Date(value.value).toISOString().replace('.000Z', 'Z') : value;
  }
  return out;
}

function sortedRows(rows) {
  const key = row => JSON.stringify(Object.keys(row).sort().map(name => [name, row[name]]));
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Every row of `table`, a page of `pageSize` at a time, following each page's nextQuery as a user pages. */
async function readInPages(table, pageSize) {
  const rows = [];
  let pages = 0;
  let query = {maxResults: pageSize, autoPaginate: false};
  while (query) {
    const [page, next] = await table.getRows(query);
    expect(`getRows page ${pages + 1}: at most maxResults rows`, page.length <= pageSize, `${page.length} rows`);
    rows.push(...page);
    pages += 1;
    query = next;
  }
  return {rows: rows.map(comparable), pages};
}

/** The client's load from a file, as `table.load(path)` reads one: a scratch file that is removed afterwards. */
async function loadFile(table, name, contents, metadata) {
  const dir = await mkdtemp(path.join(tmpdir(), 'conformance-node-'));
  try {
    const file = path.join(dir, name);
    await writeFile(file, contents);
    const [job] = await table.load(file, metadata);
    return job;
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

function ndjson(rows) {
  return rows.map(row => JSON.stringify(row) + '\n').join('');
}

function checkLoadJob(what, job, {rows, tableId, writeDisposition}) {
  expectEqual(`${what}: state`, job.status.state, 'DONE');
  expect(`${what}: no error`, !job.status.errorResult, JSON.stringify(job.status.errorResult));
  expectEqual(`${what}: outputRows`, job.statistics.load.outputRows, String(rows));
  expectEqual(`${what}: destination`, job.configuration.load.destinationTable.tableId, tableId);
  expectEqual(`${what}: write disposition`, job.configuration.load.writeDisposition, writeDisposition);
}

/**
 * Dataset and day-partitioned table creation, NDJSON loads with WRITE_TRUNCATE into partition decorators through
 * `table.load(file)`, jobs listed and fetched, and reading back through getMetadata and paged getRows.
 */
async function roundTrip(plan) {
  const bq = client(plan);
  const [dataset, created] = await bq.createDataset(plan.dataset);
  expectEqual('createDataset: datasetReference', created.datasetReference, {
    projectId: plan.project,
    datasetId: plan.dataset,
  });
  const duplicate = await expectError('createDataset of an existing dataset', 409, 'duplicate', () =>
    bq.createDataset(plan.dataset),
  );
  // get({autoCreate: true}) is the client's "create if missing": a GET that finds the dataset.
  const [again] = await bq.dataset(plan.dataset).get({autoCreate: true});
  expectEqual('dataset.get(autoCreate) on an existing dataset: location', again.metadata.location, 'US');

  const table = await createCandlesTable(dataset, plan.table);
  const schema = table.metadata.schema.fields.map(field => [field.name, field.type, field.mode ?? 'NULLABLE']);
  expectEqual('createTable: schema', schema, [
    ['exchange', 'STRING', 'REQUIRED'],
    ['symbol', 'STRING', 'REQUIRED'],
    ['open_time', 'TIMESTAMP', 'REQUIRED'],
    ['close', 'FLOAT', 'NULLABLE'],
    ['trade_count', 'INTEGER', 'NULLABLE'],
  ]);
  expectEqual('createTable: time partitioning', table.metadata.timePartitioning, {type: 'DAY', field: 'open_time'});
  expectEqual('createTable: clustering', table.metadata.clustering, {fields: ['exchange', 'symbol']});

  const jobs = {};
  const loads = [
    ['first', plan.first_day, plan.first_partition],
    ['second', plan.second_day, plan.second_partition],
    ['rerun', plan.rerun_first_day, plan.first_partition],
  ];
  for (const [name, rows, partition] of loads) {
    const tableId = `${plan.table}$${partition}`;
    const job = await loadFile(dataset.table(tableId), `${name}.json`, ndjson(rows), {
      sourceFormat: 'NEWLINE_DELIMITED_JSON',
      writeDisposition: 'WRITE_TRUNCATE',
    });
    checkLoadJob(`${name} load`, job, {rows: rows.length, tableId, writeDisposition: 'WRITE_TRUNCATE'});
    jobs[name] = job.jobReference.jobId;
  }

  const [newest] = await bq.getJobs({maxResults: 2});
  expectEqual(
    'getJobs({maxResults: 2}): the two newest jobs',
    newest.map(job => job.id),
    [jobs.rerun, jobs.second],
  );
  const [fetched] = await bq.job(jobs.rerun).getMetadata();
  expectEqual('job.getMetadata: job type', fetched.configuration.jobType, 'LOAD');
  expectEqual('job.getMetadata: outputRows', fetched.statistics.load.outputRows, String(plan.rerun_first_day.length));
  const [tables] = await dataset.getTables();
  expectEqual(
    'getTables',
    tables.map(item => item.id),
    [plan.table],
  );

  const expectedAll = [...plan.second_day, ...plan.rerun_first_day];
  const [metadata] = await table.getMetadata();
  const numRows = String(expectedAll.length);
  expectEqual('getMetadata: numRows after the rerun replaced its partition', metadata.numRows, numRows);
  expectEqual('getMetadata: tableReference', metadata.tableReference, {
    projectId: plan.project,
    datasetId: plan.dataset,
    tableId: plan.table,
  });

  const paged = await readInPages(table, plan.page_size);
  expectEqual('getRows in pages: every row', sortedRows(paged.rows), sortedRows(expectedAll));
  expectEqual('getRows in pages: page count', paged.pages, Math.ceil(expectedAll.length / plan.page_size));

  const [all] = await table.getRows();
  expectEqual('getRows with autoPaginate: every row', sortedRows(all.map(comparable)), sortedRows(expectedAll));

  const [partition] = await dataset.table(`${plan.table}$${plan.first_partition}`).getRows();
  expectEqual(
    'getRows of a partition decorator',
    sortedRows(partition.map(comparable)),
    sortedRows(plan.rerun_first_day),
  );

  const missing = await expectError('getMetadata of a missing table', 404, 'notFound', () =>
    dataset.table('missing').getMetadata(),
  );
  return {jobs, num_rows: Number(metadata.numRows), pages: paged.pages, errors: {duplicate, missing}};
}

/** A CSV load with a header row (skipLeadingRows 1) into a partition, streamed through `createWriteStream`. */
async function csvLoad(plan) {
  const bq = client(plan);
  const [dataset] = await bq.createDataset(plan.dataset);
  await createCandlesTable(dataset, plan.table);
  const header = 'exchange,symbol,open_time,close,trade_count\n';
  const body = plan.rows
    .map(row => `${row.exchange},${row.symbol},${row.open_time},${row.close},${row.trade_count}\n`)
    .join('');
  const tableId = `${plan.table}$${plan.partition}`;
  const stream = dataset.table(tableId).createWriteStream({
    sourceFormat: 'CSV',
    skipLeadingRows: 1,
    writeDisposition: 'WRITE_TRUNCATE',
  });
  const created = new Promise((resolve, reject) => stream.on('job', resolve).on('error', reject));
  stream.end(header + body);
  const job = await created;
  const [done] = await job.promise().then(() => job.getMetadata());
  checkLoadJob('CSV load', done, {rows: plan.rows.length, tableId, writeDisposition: 'WRITE_TRUNCATE'});
  expectEqual('CSV load: source format', done.configuration.load.sourceFormat, 'CSV');
  expectEqual('CSV load: skipLeadingRows', done.configuration.load.skipLeadingRows, 1);

  const table = dataset.table(plan.table);
  const [metadata] = await table.getMetadata();
  expectEqual('getMetadata: numRows', metadata.numRows, String(plan.rows.length));
  const paged = await readInPages(table, plan.page_size);
  expectEqual('getRows in pages: the CSV rows', sortedRows(paged.rows), sortedRows(plan.rows));
  return {job_id: job.id, num_rows: Number(metadata.numRows), pages: paged.pages};
}

/** `bigquery.query` of a COUNT(*) over rows a load put in place. */
async function query(plan) {
  const bq = client(plan);
  const [dataset] = await bq.createDataset(plan.dataset);
  await createCandlesTable(dataset, plan.table);
  const tableId = `${plan.table}$${plan.partition}`;
  await loadFile(dataset.table(tableId), 'rows.json', ndjson(plan.rows), {
    sourceFormat: 'NEWLINE_DELIMITED_JSON',
    writeDisposition: 'WRITE_TRUNCATE',
  });
  const target = `\`${plan.project}.${plan.dataset}.${plan.table}\``;
  const [rows] = await bq.query(`SELECT COUNT(*) AS n FROM ${target}`);
  expectEqual('query: COUNT(*)', rows, [{n: plan.rows.length}]);
  // Named parameters, as the client types them from JavaScript values.
  const [spot] = await bq.query({
    query: `SELECT symbol, COUNT(*) AS n FROM ${target} WHERE trade_count >= @least AND symbol = @symbol GROUP BY symbol`,
    params: {least: plan.least, symbol: 'BTCUSDT'},
  });
  expectEqual('query with parameters', spot, [{symbol: 'BTCUSDT', n: plan.rows.length - plan.least}]);
  // A DELETE through a query job: the affected rows in the job's statistics.
  const [job] = await bq.createQueryJob({query: `DELETE FROM ${target} WHERE trade_count < @least`, params: {least: plan.least}});
  await job.getQueryResults();
  const [metadata] = await job.getMetadata();
  expectEqual('DELETE: numDmlAffectedRows', metadata.statistics.query.numDmlAffectedRows, String(plan.least));
  // A query the fake cannot run fails with BigQuery's error, never a wrong answer.
  let refused = null;
  try {
    await bq.query(`SELECT clsoe FROM ${target}`);
  } catch (error) {
    refused = error;
  }
  expect('a misspelt column is refused', refused !== null && /Unrecognized name: clsoe/.test(refused.message), String(refused));
  return {n: rows[0].n, deleted: Number(metadata.statistics.query.numDmlAffectedRows)};
}

const SCENARIOS = {round_trip: roundTrip, csv_load: csvLoad, query};

async function main() {
  const plan = JSON.parse(process.argv[2]);
  const scenario = SCENARIOS[plan.scenario];
  if (!scenario) {
    console.error(`unknown scenario ${plan.scenario} (${Object.keys(SCENARIOS).join(', ')})`);
    return 2;
  }
  try {
    const result = await scenario(plan);
    console.log(JSON.stringify({scenario: plan.scenario, ok: true, ...result}));
    return 0;
  } catch (error) {
    if (error instanceof Mismatch) {
      console.error(`MISMATCH in ${plan.scenario}: ${error.message}`);
    } else {
      // Any client error is a conformance failure worth its stack, the request and the API's answer (the
      // client's ApiError also holds the whole response stream, which is noise here).
      console.error(`UNEXPECTED ERROR in ${plan.scenario}: ${error.stack}`);
      if (error.code !== undefined) {
        const request = error.response?.request?.href;
        console.error(JSON.stringify({status: error.code, errors: error.errors, request}, null, 2));
      }
    }
    return 1;
  }
}

process.exitCode = await main();

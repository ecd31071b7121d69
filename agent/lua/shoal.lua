-- shoal.lua — written by the Shoal agent into its run directory at start (SPEC §3).
--
-- The application calls require('shoal').cfg(box_options) where it would call box.cfg. This opens
-- the admin console on SHOAL_CONSOLE_SOCKET and blocks the calling fiber until the agent, over that
-- console, sends the configuration; box.cfg then runs with the agent's options (identity, listen,
-- replication, read_only, quorums…) merged over the application's, and cfg returns.
--
-- Everything else here is called by the agent through the console. Functions that touch the data
-- directory live here, not in the agent, because the data files are where the APPLICATION put them
-- (the Tarantool container's volume), which the agent container may not see.
--
-- Agent protocol (all return JSON-friendly tables; vclocks are maps with string keys, component 0
-- — local spaces — left out):
--   status()                            phase, pid, attempt, last_error, promotion, box.info digest
--   offline_vclock(uuid)                vclock of the data files, read without box.cfg, and the
--                                       synchronous-replication facts of its recovery (below)
--   move_data_aside(reason)             before box.cfg only: files → <dir>/shoal-diverged-<time>/
--   move_aside_and_exit(reason)         after box.cfg: fence, move the files aside, exit the process
--   configure(box_options, shoal_opts)  hands the configuration to cfg(); returns the attempt number
--   promote(opts)                       read_only=false, then claims the synchronous queue in a fiber:
--                                       box.ctl.promote() on 3.x (a new term: rows of the deposed owner
--                                       are refused), box.ctl.clear_synchro_queue() on 2.6
--   ensure_replication_user(name, pw)   idempotent user + 'replication' grant
--   topology(t)                         calls every on_topology hook (each in pcall)
--   bootstrap_buckets(timeout)          vshard.router.bootstrap() on a router; {bootstrapped, found} (SPEC §4b)
--   find_masters()                      vshard.router.master_search_wakeup() on a router (SPEC §4b)
--   vclock()                            box.info.vclock, cheap (polled while waiting for a vclock)
--   expel(uuid)                         on the master: deletes the instance from box.space._cluster
--   arm_watchdog(seconds)               sets the watchdog lease's length (nil disarms); renews nothing
--   renew_watchdog()                    extends the lease: only the agent's self-fencer calls it, and only
--                                       while it holds a fresh mesh majority that also hears it
--   note(t)                             merges t into the agent's notes (returned by status())
--   fence_now()                         read-only at once (false before box.cfg: nothing to fence)
-- 3.x native style (preload() instead of cfg(); see below):
--   user_config()                       the user's YAML config file, as text
--   configure_native(config, shoal_opts) hands the whole config to preload(), which writes it to
--                                       TT_CONFIG and lets the config module start the instance
--   apply_config(config, notes)         running: notes, write, config:reload()
local fiber = require('fiber')
local fio = require('fio')
local log = require('log')
local xlog = require('xlog')
local ffi = require('ffi')
local errno = require('errno')

pcall(ffi.cdef, 'int getpid(void);')
pcall(ffi.cdef, 'void _exit(int status);')

local M = {}

-- The running Tarantool. 3.x has the synchronous queue's owner and term (box.ctl.promote claims it;
-- every other instance is read-only while another owns it); 2.6 has neither, only
-- box.ctl.clear_synchro_queue. Shoal supports 3.x and 2.6 (the agent refuses anything else).
local VERSION = require('tarantool').version
local MAJOR = tonumber(VERSION:match('^(%d+)')) or 0
local QUEUE_OWNERSHIP = MAJOR >= 3

-- How often cfg() says that it is still waiting for the agent.
local WAIT_LOG_INTERVAL = 30
-- How long a master's cfg() waits for its claim of the synchronous queue before the application runs.
local CLAIM_BEFORE_APP = 5
-- Delay between answering move_aside_and_exit and exiting, so the reply reaches the agent.
local EXIT_DELAY = 0.2

local state = {
    phase = 'loaded',        -- loaded → waiting → configuring → configured (or back to waiting after a failed try)
    app_options = nil,       -- what the application passed to cfg()
    dirs = nil,              -- absolute data directories, resolved before box.cfg changes the cwd
    attempt = 0,             -- configure() calls so far
    last_error = nil,        -- {attempt, message} of the last failed configure
    promotion = nil,         -- {id, state = running|done|failed, error}
    console_socket = nil,
    hooks = {},
    native = nil,            -- 3.x native style: {config, user_config, instance, replicaset, group} (preload)
    user_config_text = nil,
    topology = nil,
    topology_version = 0,
    notes = setmetatable({}, {__serialize = 'map'}), -- small facts the agent keeps here so they survive an agent restart
}
local requests = fiber.channel(1)

local function pid()
    return tonumber(ffi.C.getpid())
end

-- 'user:password@host:port' → 'user:***@host:port' for logs.
local function redact(uri)
    if type(uri) ~= 'string' then return uri end
    return (uri:gsub('^([^:@/]+):[^@]*@', '%1:***@'))
end

local function redacted_options(opts)
    local out = {}
    for k, v in pairs(opts) do
        if k == 'replication' then
            local list = type(v) == 'table' and v or {v}
            out[k] = {}
            for i, uri in ipairs(list) do out[k][i] = redact(uri) end
        else
            out[k] = v
        end
    end
    return out
end

-- Vclock as a map with string keys (JSON would turn {1: 5} into an array), component 0 left out.
local function vclock_map(vc)
    local out = setmetatable({}, {__serialize = 'map'})
    for id, lsn in pairs(vc or {}) do
        if tonumber(id) ~= 0 then out[tostring(id)] = tonumber(lsn) end
    end
    return out
end

local function join(base, path)
    if path:sub(1, 1) == '/' then return path end
    if path == '.' or path == '' then return base end
    return base .. '/' .. path
end

local function normalise(path)
    path = path:gsub('/%./', '/'):gsub('/%.$', ''):gsub('//+', '/')
    if #path > 1 then path = path:gsub('/$', '') end
    return path
end

-- The data directories as box.cfg will use them: work_dir relative to the current directory,
-- memtx_dir/wal_dir/vinyl_dir relative to work_dir (box.cfg chdirs there).
local function resolve_dirs(opts)
    local work = normalise(fio.abspath(opts.work_dir or '.'))
    return {
        work = work,
        memtx = normalise(join(work, opts.memtx_dir or '.')),
        wal = normalise(join(work, opts.wal_dir or '.')),
        vinyl = normalise(join(work, opts.vinyl_dir or '.')),
    }
end

local function dirs()
    if state.dirs == nil then error('shoal.cfg() has not been called yet: the data directories are unknown') end
    return state.dirs
end

function M.data_dirs()
    return dirs()
end

-- Header of a .snap/.xlog file: 'VClock: {1: 17, 2: 7}' within the first lines.
local function header_vclock(path)
    local fh = io.open(path, 'rb')
    if fh == nil then return nil end
    local head = fh:read(1024) or ''
    fh:close()
    if head:sub(1, 4) ~= 'SNAP' and head:sub(1, 4) ~= 'XLOG' then return nil end
    local text = head:match('\nVClock: (%b{})')
    local vc = {}
    if text then
        for id, lsn in text:gmatch('(%d+):%s*(%d+)') do vc[tonumber(id)] = tonumber(lsn) end
    end
    return vc
end

local function merge_max(into, vc)
    for id, lsn in pairs(vc) do
        if into[id] == nil or into[id] < lsn then into[id] = lsn end
    end
end

local function sorted_glob(dir, pattern)
    local files = fio.glob(dir .. '/' .. pattern) or {}
    table.sort(files)
    return files
end

-- Files are named after the vclock signature (sum of components) of their start.
local function signature_of(path)
    return tonumber(fio.basename(path):match('^(%d+)%.')) or 0
end

-- System spaces whose rows tell the synchronous-replication facts below.
local SPACE_SPACE, CLUSTER_SPACE = 280, 320
-- IPROTO_CONFIRM / IPROTO_ROLLBACK rows: body {[2] = replica id, [3] = lsn}.
local CONFIRM, ROLLBACK = 40, 41

-- The flags field of _space (is_sync lives there) as an update operation names it.
local function is_flags_field(field, index_base)
    return field == 'flags' or field == 6 - 1 + (index_base or 0)
end

-- Keeps what a row of _space or _cluster says: which spaces are synchronous, which id is whose.
-- A space made synchronous later is an UPDATE of _space (2.x has no space:alter; the row holds the
-- key and the operations, not the tuple) or a REPLACE (3.x's space:alter).
local function learn(facts, space_id, body, row_type)
    local tuple = body.tuple
    if tuple == nil then return end -- a tuple (cdata) in rows read by xlog.pairs
    if space_id == SPACE_SPACE and row_type == 'UPDATE' then
        -- key and operations come as tuples (cdata), each operation as a table
        local id = body.key ~= nil and body.key[1] or nil
        local name = id ~= nil and facts.names[id] or nil
        for i = 1, #tuple do
            local op = tuple[i]
            if type(op) == 'table' and op[1] == '=' and is_flags_field(op[2], body.index_base) and name ~= nil then
                facts.sync[id] = type(op[3]) == 'table' and op[3].is_sync == true and name or nil
            end
        end
    elseif space_id == SPACE_SPACE then
        local opts = tuple[6]
        facts.names[tuple[1]] = tuple[3]
        facts.sync[tuple[1]] = type(opts) == 'table' and opts.is_sync == true and tuple[3] or nil
    elseif space_id == CLUSTER_SPACE then
        facts.ids[tuple[2]] = tuple[1]
    end
end

-- Rows of a synchronous space in the snapshot (checkpoints write spaces in id order, so the scan
-- stops past the last synchronous space): Tarantool 2.6.0 cannot recover them (box.cfg waits for
-- a quorum that never comes, then dies with "transaction rolled back during snapshot recovery").
local function scan_snapshot(path, facts)
    local found
    pcall(function()
        for _, row in xlog.pairs(path) do
            local b = row.BODY or {}
            local id = b.space_id
            if id == SPACE_SPACE or id == CLUSTER_SPACE then learn(facts, id, b, row.HEADER and row.HEADER.type)
            elseif id ~= nil and facts.sync[id] ~= nil then found = facts.sync[id] break
            elseif id ~= nil and id > CLUSTER_SPACE then
                local last = 0
                for sid in pairs(facts.sync) do last = math.max(last, sid) end
                if id > last then break end
            end
        end
    end)
    return found
end

-- The vclock of the data files, read without box.cfg: the newest snapshot's header, then the
-- headers and the real rows (require('xlog')) of every xlog that may hold rows after it. A torn
-- xlog tail (kill -9) stops the read of that file with a warning; rows read up to there count.
-- It also tells what recovering these files will meet: a snapshot holding rows of a synchronous
-- space, and per instance id the first lsn of synchronous rows no CONFIRM or ROLLBACK covers (they,
-- and every row of that id after them, sit in the synchronous queue after recovery, uncommitted);
-- own_id is instance_uuid's id in _cluster.
function M.offline_vclock(instance_uuid)
    local d = dirs()
    local snaps = sorted_glob(d.memtx, '*.snap')
    local xlogs = sorted_glob(d.wal, '*.xlog')
    local vc, warnings = {}, {}
    local facts = {sync = {}, names = {}, ids = {}}
    local newest_snap = snaps[#snaps]
    local from = 0
    local sync_snapshot_space
    if newest_snap then
        merge_max(vc, header_vclock(newest_snap) or {})
        from = signature_of(newest_snap)
        sync_snapshot_space = scan_snapshot(newest_snap, facts)
    end
    -- The xlog that was open when the snapshot was taken starts at or before its signature.
    local first = 1
    for i, path in ipairs(xlogs) do
        if signature_of(path) <= from then first = i end
    end
    local read = 0
    -- Per instance id, the lsns of its synchronous rows no CONFIRM or ROLLBACK has covered yet.
    local pending = {}
    for i = first, #xlogs do
        local path = xlogs[i]
        merge_max(vc, header_vclock(path) or {})
        local ok, err = pcall(function()
            for _, row in xlog.pairs(path) do
                local h, b = row.HEADER, row.BODY or {}
                if h and h.replica_id and h.lsn then merge_max(vc, {[h.replica_id] = h.lsn}) end
                if h and (h.type == CONFIRM or h.type == ROLLBACK) and b[2] ~= nil and b[3] ~= nil then
                    local q = pending[b[2]] or {}
                    while q[1] ~= nil and q[1] <= b[3] do table.remove(q, 1) end
                elseif h and h.replica_id and h.lsn and b.space_id ~= nil then
                    if facts.sync[b.space_id] ~= nil then
                        pending[h.replica_id] = pending[h.replica_id] or {}
                        table.insert(pending[h.replica_id], h.lsn)
                    end
                    learn(facts, b.space_id, b, h.type)
                end
            end
        end)
        read = read + 1
        if not ok then table.insert(warnings, string.format('%s: %s', fio.basename(path), tostring(err))) end
    end
    local unconfirmed = {}
    for id, q in pairs(pending) do unconfirmed[id] = q[1] end
    return {
        vclock = vclock_map(vc),
        empty = #snaps == 0 and #xlogs == 0,
        snapshot = newest_snap and fio.basename(newest_snap) or nil,
        xlogs_read = read,
        warnings = warnings,
        dirs = d,
        tarantool = require('tarantool').version,
        sync_snapshot_space = sync_snapshot_space,
        unconfirmed = vclock_map(unconfirmed),
        own_id = instance_uuid ~= nil and facts.ids[instance_uuid] or nil,
    }
end

-- Names of the data files in `dir` that belong to the instance (vinyl keeps runs in numeric subdirectories).
local function data_entries(dir, with_vinyl)
    local out = {}
    for _, name in ipairs(fio.listdir(dir) or {}) do
        local path = dir .. '/' .. name
        if name:match('%.snap$') or name:match('%.xlog$') or name:match('%.vylog$') or name:match('%.inprogress$')
            or (with_vinyl and name:match('^%d+$') and fio.path.is_dir(path)) then
            table.insert(out, name)
        end
    end
    table.sort(out)
    return out
end

-- Plans the move of every data directory: {dir, aside, entries}. Directories are created here
-- (fio yields); the renames themselves are done by apply_moves without yielding.
local function plan_moves(reason)
    local d = dirs()
    local stamp = os.date('!%Y%m%dT%H%M%SZ')
    local seen, plan = {}, {}
    for _, key in ipairs({'memtx', 'wal', 'vinyl'}) do
        local dir = d[key]
        if not seen[dir] then
            seen[dir] = true
            local entries = data_entries(dir, dir == d.vinyl)
            if #entries > 0 then
                -- Inside the data directory, not next to it: that is usually a volume mount point,
                -- and its parent is another filesystem (rename would fail) outside the volume.
                local aside = dir .. '/shoal-diverged-' .. stamp
                local n = 1
                while fio.path.exists(aside) do
                    n = n + 1
                    aside = dir .. '/shoal-diverged-' .. stamp .. '-' .. n
                end
                if not fio.mkdir(aside) then error(string.format('cannot create %s: %s', aside, tostring(errno.strerror()))) end
                local note = io.open(aside .. '/SHOAL-README.txt', 'w')
                if note then
                    note:write(string.format('Moved aside by Shoal at %s (UTC) from %s.\nReason: %s\n' ..
                        'Nothing was deleted. Inspect with tarantool and require("xlog"); remove when no longer needed.\n',
                        stamp, dir, tostring(reason)))
                    note:close()
                end
                table.insert(plan, {dir = dir, aside = aside, entries = entries})
            end
        end
    end
    return plan
end

local function apply_moves(plan, reason)
    local moved = {}
    for _, p in ipairs(plan) do
        for _, name in ipairs(p.entries) do
            local ok, err = os.rename(p.dir .. '/' .. name, p.aside .. '/' .. name)
            if not ok then
                error(string.format('moving %s/%s to %s failed: %s (already moved: %d files)',
                    p.dir, name, p.aside, tostring(err), #moved))
            end
            table.insert(moved, name)
        end
        log.warn('shoal: moved %d data files from %s to %s (%s); nothing was deleted', #p.entries, p.dir, p.aside,
            tostring(reason))
    end
    local out = {}
    for i, p in ipairs(plan) do out[i] = {from = p.dir, to = p.aside, files = #p.entries} end
    return out
end

-- Before box.cfg: moves the data files into <dir>/shoal-diverged-<UTC time>/ so the next box.cfg
-- bootstraps empty (with the same instance_uuid). Never deletes anything.
function M.move_data_aside(reason)
    if state.phase ~= 'waiting' then
        error(string.format('cannot move the data aside while the instance is %s (only before box.cfg)', state.phase))
    end
    return apply_moves(plan_moves(reason), reason)
end

-- After box.cfg: the data files are open, so fence (read-only, no replication, no checkpoints),
-- move them aside, answer, and exit; the container restarts into an empty data
-- directory and the agent bootstraps it as a replica with the same instance_uuid.
function M.move_aside_and_exit(reason)
    if state.phase ~= 'configured' then
        error(string.format('move_aside_and_exit needs a configured instance (it is %s); use move_data_aside', state.phase))
    end
    box.cfg({read_only = true, replication = {}, checkpoint_interval = 0})
    local moved = apply_moves(plan_moves(reason), reason)
    state.phase = 'exiting'
    fiber.create(function()
        fiber.sleep(EXIT_DELAY)
        log.warn('shoal: exiting so that the instance restarts empty (%s)', tostring(reason))
        -- _exit, not os.exit: a clean shutdown opens a fresh xlog in wal_dir, which would make the
        -- emptied directory look like data again. The moved files recover like after kill -9.
        ffi.C._exit(0)
    end)
    return moved
end

function M.ensure_replication_user(name, password)
    if type(name) ~= 'string' or name == '' or type(password) ~= 'string' or password == '' then
        error('ensure_replication_user needs a user name and a non-empty password')
    end
    local existing = box.space._user.index.name:get({name})
    if existing == nil then
        box.schema.user.create(name, {password = password, if_not_exists = true})
    else
        local auth = existing[5]
        if type(auth) ~= 'table' or auth['chap-sha1'] ~= box.schema.user.password(password) then
            box.schema.user.passwd(name, password)
        end
    end
    box.schema.user.grant(name, 'replication', nil, nil, {if_not_exists = true})
    return true
end

-- Owning the queue is not enough: an owner that restarted recovers its ownership from the WAL but
-- stays read-only (ro_reason 'synchro') until it promotes again, in a new term.
local function owns_queue()
    return box.info.synchro.queue.owner == box.info.id and box.info.ro_reason ~= 'synchro'
end
local start_promotion -- defined with promote() below; a master's first box.cfg starts one on 3.x

-- Runs in cfg()'s fiber: box.cfg with the agent's options over the application's.
local function apply(req)
    local merged = {}
    for k, v in pairs(state.app_options) do merged[k] = v end
    for k, v in pairs(req.box) do merged[k] = v end
    merged.feedback_enabled = false
    log.info('shoal: box.cfg attempt %d with %s', req.attempt, require('json').encode(redacted_options(merged)))
    box.cfg(merged)
    -- 'configured' only once the user exists: the agent tells replicas to join when it sees it.
    local ok, err = true, nil
    local user = req.shoal.replication_user
    if user ~= nil and not box.info.ro then
        ok, err = pcall(M.ensure_replication_user, user.name, user.password)
    end
    state.phase = 'configured'
    -- A master on 3.x owns the synchronous queue (or is-sync writes fail with SYNC_QUEUE_UNCLAIMED):
    -- claim it now, retrying in a fiber until its replicas are connected.
    if QUEUE_OWNERSHIP and merged.read_only == false then
        start_promotion(req.shoal.claim_timeout)
        -- box.ctl.promote makes the instance read-only while it runs: the application, which
        -- runs when cfg() returns, must find its master writable (if not box.info.ro then create
        -- the schema). Usually a millisecond; bounded, so a claim waiting for replicas cannot
        -- hold the application back for long (it goes on in its fiber).
        local p, deadline = state.promotion, fiber.clock() + CLAIM_BEFORE_APP
        while p.state == 'running' and fiber.clock() < deadline do fiber.sleep(0.005) end
    end
    if not ok then error(err) end
end

-- The agent's half of the hand-over: queue the configuration for cfg(); poll status() for the outcome.
function M.configure(box_options, shoal_options)
    if state.phase ~= 'waiting' then
        error(string.format('cannot configure: the instance is %s, not waiting for its configuration', state.phase))
    end
    state.attempt = state.attempt + 1
    state.phase = 'configuring'
    requests:put({box = box_options or {}, shoal = shoal_options or {}, attempt = state.attempt}, 0)
    return state.attempt
end

function M.cfg(app_options)
    if state.phase ~= 'loaded' then
        error('shoal.cfg() was already called; use box.cfg{} for runtime changes of your own options')
    end
    state.app_options = app_options or {}
    state.dirs = resolve_dirs(state.app_options)
    local socket = os.getenv('SHOAL_CONSOLE_SOCKET') or '/var/run/shoal/console.sock'
    state.console_socket = socket
    require('console').listen('unix/:' .. socket)
    -- The agent runs as another user in another container; the run volume is shared by those two only.
    fio.chmod(socket, tonumber('0666', 8))
    state.phase = 'waiting'
    log.info('shoal: console on %s, waiting for the agent to configure this instance', socket)
    while true do
        local req = requests:get(WAIT_LOG_INTERVAL)
        if req == nil then
            log.info('shoal: still waiting for the agent (console %s)', socket)
        else
            local ok, err = pcall(apply, req)
            if ok then
                log.info('shoal: configured (attempt %d)', req.attempt)
                return
            end
            state.last_error = {attempt = req.attempt, message = tostring(err)}
            log.error('shoal: configuration attempt %d failed: %s', req.attempt, tostring(err))
            if state.phase == 'configured' then return end -- box is up; the agent sees last_error
            if type(box.cfg) ~= 'function' then
                state.phase = 'failed'
                error('shoal: box.cfg failed half-way, restart the instance: ' .. tostring(err))
            end
            state.phase = 'waiting'
        end
    end
end

-- 3.x native style (SPEC §4a): the application is a Tarantool 3 YAML config without topology.
-- The Tarantool container runs with TT_PRELOAD=<run dir>/preload.lua, TT_CONFIG=<run dir>/config.yaml
-- and TT_INSTANCE_NAME=<pod>; the user's own file is SHOAL_USER_CONFIG. preload() runs before the
-- config module starts: it opens the console and blocks until the agent hands over the whole config
-- (the user's options plus groups, replica sets, instances, replication.failover = manual and the
-- leader), writes it to TT_CONFIG and returns, so that Tarantool's own config module runs box.cfg.
-- Later changes (peers, quorum, leader) arrive through apply_config(): write, then config:reload().

local function native_template(path, n)
    return (path:gsub('{{%s*instance_name%s*}}', n.instance)
        :gsub('{{%s*replicaset_name%s*}}', n.replicaset or '')
        :gsub('{{%s*group_name%s*}}', n.group or ''))
end

-- The data directories the config module will give box.cfg: snapshot.dir, wal.dir and vinyl.dir
-- (default var/lib/{{ instance_name }}) relative to process.work_dir (default: the current one).
local function native_dirs(user, n)
    local function get(section, key)
        local t = user[section]
        return type(t) == 'table' and t[key] or nil
    end
    local work = normalise(fio.abspath(get('process', 'work_dir') or '.'))
    local default = 'var/lib/{{ instance_name }}'
    local function dir(section) return normalise(join(work, native_template(get(section, 'dir') or default, n))) end
    local pid_file = normalise(join(work, native_template(get('process', 'pid_file') or 'var/run/{{ instance_name }}/tarantool.pid', n)))
    return {work = work, memtx = dir('snapshot'), wal = dir('wal'), vinyl = dir('vinyl'), pid = fio.dirname(pid_file)}
end

local function read_file(path)
    local f, err = fio.open(path, {'O_RDONLY'})
    if f == nil then error(string.format('cannot read %s: %s', path, tostring(err))) end
    local text = f:read()
    f:close()
    return text
end

-- Writes the config atomically (Tarantool never reads half a file). A fenced instance stays out
-- of the leader's seat whatever the agent sends until it is unfenced: a reload for another
-- reason must not make it writable again.
local function write_config(doc)
    if type(doc) ~= 'table' or type(doc.groups) ~= 'table' then error('apply_config needs a config with groups') end
    if state.notes.fenced then
        for _, g in pairs(doc.groups) do
            for _, rs in pairs(g.replicasets or {}) do
                if rs.leader == state.native.instance then rs.leader = nil end
            end
        end
    end
    local path = state.native.config
    local tmp = path .. '.tmp'
    local f, err = fio.open(tmp, {'O_WRONLY', 'O_CREAT', 'O_TRUNC'}, tonumber('0600', 8))
    if f == nil then error(string.format('cannot write %s: %s', tmp, tostring(err))) end
    local ok, werr = f:write(require('yaml').encode(doc))
    f:close()
    if not ok then error(string.format('cannot write %s: %s', tmp, tostring(werr))) end
    local renamed, rerr = fio.rename(tmp, path)
    if not renamed then error(string.format('cannot rename %s to %s: %s', tmp, path, tostring(rerr))) end
end

-- After preload returned, the config module runs box.cfg and the application file; the instance
-- counts as configured once that is over (and its replication user exists, as in the Lua style).
local NATIVE_STARTUP_POLL = 0.01
local function native_started(req)
    fiber.create(function()
        fiber.self():name('shoal_native_start')
        local config = require('config')
        while type(box.cfg) == 'function' or config:info().status == 'startup_in_progress' do
            fiber.sleep(NATIVE_STARTUP_POLL)
        end
        local info = config:info()
        local user = req.shoal.replication_user
        if user ~= nil and not box.info.ro then
            local ok, err = pcall(M.ensure_replication_user, user.name, user.password)
            if not ok then state.last_error = {attempt = req.attempt, message = tostring(err)} end
        end
        if info.status == 'check_errors' then
            state.last_error = {attempt = req.attempt, message = 'config: ' .. require('json').encode(info.alerts)}
        end
        state.phase = 'configured'
        log.info('shoal: configured by the config module (attempt %d, config %s)', req.attempt, info.status)
        if box.cfg.read_only == false and not owns_queue() then start_promotion(req.shoal.claim_timeout) end
    end)
end

function M.preload()
    if state.phase ~= 'loaded' then error('shoal: preload() after cfg() or a second preload()') end
    if not QUEUE_OWNERSHIP then
        error('shoal: the 3.x native style (TT_CONFIG) needs Tarantool 3; Tarantool ' .. VERSION ..
            ' must call require("shoal").cfg{…} from its init.lua instead')
    end
    local n = {
        config = os.getenv('TT_CONFIG'),
        user_config = os.getenv('SHOAL_USER_CONFIG'),
        instance = os.getenv('TT_INSTANCE_NAME'),
        replicaset = os.getenv('SHOAL_REPLICASET'),
        group = os.getenv('SHOAL_CLUSTER'),
    }
    for _, k in ipairs({'config', 'user_config', 'instance'}) do
        if n[k] == nil or n[k] == '' then
            error(string.format('shoal: preload() needs %s in the environment (the webhook sets it)',
                ({config = 'TT_CONFIG', user_config = 'SHOAL_USER_CONFIG', instance = 'TT_INSTANCE_NAME'})[k]))
        end
    end
    state.native = n
    state.user_config_text = read_file(n.user_config)
    local ok, user = pcall(require('yaml').decode, state.user_config_text)
    if not ok or type(user) ~= 'table' then
        error(string.format('shoal: %s is not a YAML mapping: %s', n.user_config, tostring(user)))
    end
    state.dirs = native_dirs(user, n)
    -- The sharding role the user's config names (SPEC §4b); the agent reads it before box.cfg.
    state.sharding_roles = type(user.sharding) == 'table' and user.sharding.roles or nil
    local socket = os.getenv('SHOAL_CONSOLE_SOCKET') or '/var/run/shoal/console.sock'
    state.console_socket = socket
    require('console').listen('unix/:' .. socket)
    fio.chmod(socket, tonumber('0666', 8))
    state.phase = 'waiting'
    log.info('shoal: console on %s, waiting for the agent to write %s', socket, n.config)
    while true do
        local req = requests:get(WAIT_LOG_INTERVAL)
        if req == nil then
            log.info('shoal: still waiting for the agent (console %s)', socket)
        else
            local wok, err = pcall(write_config, req.config)
            -- A directory the config module cannot create kills the process in its start-up; say
            -- which one here instead, while the agent can still read it (status().last_error).
            for _, key in ipairs({'work', 'memtx', 'wal', 'vinyl', 'pid'}) do
                local dir = state.dirs[key]
                if wok and not fio.path.is_dir(dir) then
                    local made, merr = fio.mktree(dir)
                    if not made then
                        wok, err = false, string.format('cannot create the %s directory %s: %s (set process.work_dir, ' ..
                            'snapshot.dir, wal.dir, vinyl.dir and process.pid_file in the config to a writable volume)', key, dir, tostring(merr))
                    end
                end
            end
            if wok then
                native_started(req)
                log.info('shoal: config written (attempt %d); the config module starts the instance', req.attempt)
                return
            end
            state.last_error = {attempt = req.attempt, message = tostring(err)}
            log.error('shoal: configuration attempt %d failed: %s', req.attempt, tostring(err))
            state.phase = 'waiting'
        end
    end
end

-- The user's config file as written (the agent parses it and adds the cluster part).
function M.user_config()
    if state.native == nil then error('not the 3.x native style: there is no user config file') end
    return state.user_config_text
end

-- Native style, before the start: the agent's first config (the counterpart of configure()).
function M.configure_native(doc, shoal_options)
    if state.native == nil then error('configure_native: this instance runs the Lua style; use configure()') end
    if state.phase ~= 'waiting' then
        error(string.format('cannot configure: the instance is %s, not waiting for its configuration', state.phase))
    end
    state.attempt = state.attempt + 1
    state.phase = 'configuring'
    requests:put({config = doc, shoal = shoal_options or {}, attempt = state.attempt}, 0)
    return state.attempt
end

-- Native style, running: a new config through Tarantool's own reload. Errors if the config module
-- reports errors after it (the previous config stays in force then, as Tarantool does).
function M.apply_config(doc, notes)
    if state.native == nil then error('apply_config: this instance runs the Lua style') end
    if state.phase ~= 'configured' then error('cannot apply a config: the instance is ' .. state.phase) end
    if notes ~= nil then M.note(notes) end
    write_config(doc)
    local config = require('config')
    config:reload()
    local info = config:info()
    if info.status == 'check_errors' then
        error('config reload: ' .. require('json').encode(info.alerts))
    end
    return info.status
end

-- 3.x: claims the synchronous queue with a new term, retrying while the replicas' connections come
-- up (box.ctl.promote fails with "Not enough peers connected" until a quorum of them is healthy), as
-- long as the instance stays writable and no newer claim replaced this one. The queue's PROMOTE row
-- makes the replicas refuse rows of the deposed owner, and every other instance read-only.
local CLAIM_RETRY = 0.05
local function claim_queue(p, timeout)
    local deadline = fiber.clock() + (timeout or 60)
    local last
    while true do
        if state.promotion ~= p then return false, 'superseded by promotion ' .. tostring(state.promotion and state.promotion.id) end
        if box.cfg.read_only then return false, 'made read-only while claiming the synchronous queue' end
        if owns_queue() then return true end
        local ok, err = pcall(box.ctl.promote)
        if not ok then last = tostring(err) end
        if owns_queue() then return true end
        if fiber.clock() > deadline then
            return false, string.format('the synchronous queue was not claimed in %.0f s: %s', timeout or 60, tostring(last))
        end
        p.attempts = (p.attempts or 0) + 1
        p.error = last
        fiber.sleep(CLAIM_RETRY)
    end
end

-- Makes the instance a writable master in a fiber that the agent polls through status().promotion:
-- 3.x claims the synchronous queue (claim_queue); 2.6 clears the queue the old master left
-- (TARANTOOL.md: a new master refuses writes until this runs; it may wait for seconds).
start_promotion = function(timeout)
    local current = state.promotion
    local p = {id = (current and current.id or 0) + 1, state = 'running'}
    state.promotion = p
    fiber.create(function()
        fiber.self():name('shoal_promote')
        local ok, err
        if QUEUE_OWNERSHIP then
            ok, err = claim_queue(p, timeout)
        else
            ok, err = pcall(box.ctl.clear_synchro_queue)
        end
        p.state = ok and 'done' or 'failed'
        p.error = (not ok) and tostring(err) or nil
        log.info('shoal: promotion %d %s%s', p.id, p.state, ok and '' or (': ' .. tostring(err)))
    end)
    return p.id
end

function M.promote(opts)
    opts = opts or {}
    if state.phase ~= 'configured' then error('cannot promote: the instance is ' .. state.phase) end
    local current = state.promotion
    if current ~= nil and current.state == 'running' then return current.id end
    local cfg = {read_only = false}
    if opts.replication_synchro_quorum ~= nil then cfg.replication_synchro_quorum = opts.replication_synchro_quorum end
    box.cfg(cfg)
    return start_promotion(opts.timeout)
end

local function upstream_of(u)
    if u == nil then return nil end
    return {status = u.status, lag = u.lag, idle = u.idle, message = u.message, peer = redact(u.peer)}
end

local function downstream_of(d)
    if d == nil then return nil end
    return {status = d.status, idle = d.idle, lag = d.lag, message = d.message, vclock = vclock_map(d.vclock)}
end

-- The dead (or cut-off) agent's switch: a lease. Self-fencing is the agent's job; an agent that died,
-- hangs, or lost its mesh majority cannot be trusted to do it, while the coordinator on the majority
-- side soon counts this pod as cut off and promotes another. So the instance makes itself read-only
-- when its lease runs out. Only renew_watchdog() extends it, and the agent calls that only from its
-- self-fencer while it holds a mesh majority that also hears it: reads (status(), /metrics, probes)
-- never keep a cut-off master writable. Armed only by an agent that takes part in coordination.
local watchdog = {seconds = nil, expires = nil, fiber = nil}

local function watch()
    fiber.self():name('shoal_watchdog')
    while true do
        fiber.sleep(0.05)
        local expires = watchdog.expires
        if watchdog.seconds ~= nil and expires ~= nil and state.phase == 'configured' and fiber.clock() > expires then
            local ok, ro = pcall(function() return box.info.ro end)
            if ok and ro == false then
                local fenced = pcall(box.cfg, {read_only = true})
                if fenced then
                    state.notes.fenced = true
                    log.warn('shoal: the agent has not renewed the watchdog lease for %.1f s (lease %.1f s): read-only until the coordinator decides',
                        fiber.clock() - expires + watchdog.seconds, watchdog.seconds)
                end
            end
        end
    end
end

-- The first arming of this process grants one lease (the instance starts read-only anyway); arming
-- again (a restarted agent) only changes the length, so a new agent never extends what the old one
-- left: it must earn its renewals.
function M.arm_watchdog(seconds)
    if seconds ~= nil and (type(seconds) ~= 'number' or seconds <= 0) then
        error('arm_watchdog needs a positive number of seconds, or nil to disarm')
    end
    watchdog.seconds = seconds
    if seconds ~= nil and watchdog.expires == nil then watchdog.expires = fiber.clock() + seconds end
    if watchdog.fiber == nil and seconds ~= nil then watchdog.fiber = fiber.create(watch) end
    return true
end

-- Read-only now: the agent's fence, on its urgent connection. Before box.cfg there is nothing to
-- fence (and calling box.cfg would start the instance), so that answers false.
function M.fence_now()
    if type(box.cfg) == 'function' then return false end
    box.cfg({read_only = true})
    state.notes.fenced = true
    return true
end

-- Returns the seconds the lease now runs for (nil when disarmed: nothing to renew).
function M.renew_watchdog()
    if watchdog.seconds == nil then return nil end
    watchdog.expires = fiber.clock() + watchdog.seconds
    return watchdog.seconds
end

-- What vshard reports on this instance (SPEC §4b /status sharding), nil where it is not configured:
-- a storage's buckets by status, a router's view of the masters and of the buckets it cannot reach.
local function vshard_status()
    local vs = rawget(_G, 'vshard')
    if vs == nil then return nil end
    local out = {}
    local ok, info = pcall(vs.storage.info)
    if ok and type(info) == 'table' and type(info.bucket) == 'table' then
        local b = info.bucket
        out.storage = {active = b.active or 0, sending = b.sending or 0, receiving = b.receiving or 0,
            garbage = b.garbage or 0, pinned = b.pinned or 0, total = b.total or 0}
    end
    ok, info = pcall(vs.router.info)
    if ok and type(info) == 'table' and type(info.bucket) == 'table' then
        local masters = {}
        for name, rs in pairs(info.replicasets or {}) do
            local m = rs.master
            masters[tostring(name)] = (type(m) == 'table' and m.status == 'available' and m.name) or box.NULL
        end
        local b = info.bucket
        out.router = {masters = masters, unknown = b.unknown or 0, unreachable = b.unreachable or 0,
            available_rw = b.available_rw or 0, available_ro = b.available_ro or 0}
    end
    if next(out) == nil then return nil end
    return out
end

-- Asks this router to create the buckets (SPEC §4b), once per cluster: the coordinator sends it
-- only when every storage replica set has a writable master. A cluster already bootstrapped (by an
-- earlier coordinator whose record was lost, or by hand) answers found = true instead of an error.
function M.bootstrap_buckets(timeout)
    local vs = rawget(_G, 'vshard')
    if vs == nil then error('vshard is not configured on this instance') end
    local ok, err = vs.router.bootstrap({timeout = timeout or 10})
    if ok then return {bootstrapped = true, found = false} end
    local msg = type(err) == 'table' and (err.message or tostring(err)) or tostring(err)
    if type(err) == 'table' and err.name == 'NON_EMPTY' then return {bootstrapped = true, found = true, message = msg} end
    error('vshard.router.bootstrap: ' .. msg)
end

function M.find_masters()
    local vs = rawget(_G, 'vshard')
    if vs == nil then error('vshard is not configured on this instance') end
    vs.router.master_search_wakeup()
    return true
end

function M.status()
    local s = {
        phase = state.phase,
        version = VERSION,
        configured = state.phase == 'configured',
        pid = pid(),
        attempt = state.attempt,
        last_error = state.last_error,
        promotion = state.promotion,
        console = state.console_socket,
        topology_version = state.topology_version,
        hooks = #state.hooks,
        notes = state.notes,
        style = state.native and 'native' or 'lua',
        sharding_roles = state.sharding_roles,
    }
    if state.phase ~= 'configured' then return s end
    s.vshard = vshard_status()
    local info = box.info
    s.id = info.id
    s.uuid = info.uuid
    s.replicaset_uuid = QUEUE_OWNERSHIP and info.replicaset.uuid or info.cluster.uuid
    s.ro = info.ro
    s.ro_reason = info.ro_reason
    if QUEUE_OWNERSHIP then s.name = info.name end
    if QUEUE_OWNERSHIP then
        local q = info.synchro.queue
        s.synchro = {owner = q.owner, term = q.term, len = q.len, quorum = info.synchro.quorum}
        s.election_term = info.election.term
    end
    s.status = info.status
    s.vclock = vclock_map(info.vclock)
    s.listen = box.cfg.listen
    s.read_only = box.cfg.read_only
    s.synchro_quorum = box.cfg.replication_synchro_quorum
    -- What the coordinator compares with the membership: box.cfg.replication without credentials,
    -- and the instances registered in _cluster (expel and rejoin decisions read the master's).
    s.cfg_replication = {}
    local configured = box.cfg.replication
    if type(configured) ~= 'table' then configured = {configured} end
    for _, uri in ipairs(configured) do
        table.insert(s.cfg_replication, (tostring(uri):gsub('^[^@/]*@', '')))
    end
    s.cluster_uuids = {}
    for _, t in box.space._cluster:pairs() do table.insert(s.cluster_uuids, t[2]) end
    s.replication = {}
    for _, r in pairs(info.replication) do
        table.insert(s.replication, {
            id = r.id, uuid = r.uuid, lsn = r.lsn,
            upstream = upstream_of(r.upstream),
            downstream = downstream_of(r.downstream),
        })
    end
    table.sort(s.replication, function(a, b) return a.id < b.id end)
    return s
end

function M.vclock()
    if state.phase ~= 'configured' then error('the instance is not configured (' .. state.phase .. ')') end
    return vclock_map(box.info.vclock)
end

-- Removes an expelled instance from the replica set's registry (SPEC §5 expel). Runs on the
-- writable master; replicas receive the deletion through replication. Idempotent.
function M.expel(uuid)
    if state.phase ~= 'configured' then error('cannot expel: the instance is ' .. state.phase) end
    if type(uuid) ~= 'string' or uuid == '' then error('expel needs an instance uuid') end
    if uuid == box.info.uuid then error('refusing to expel this instance itself') end
    if box.info.ro then error('cannot expel on a read-only instance: expel runs on the master') end
    local t = box.space._cluster.index.uuid:get({uuid})
    if t == nil then return {deleted = false} end
    box.space._cluster:delete({t[1]})
    log.warn('shoal: expelled %s (id %d) from box.space._cluster', uuid, t[1])
    return {deleted = true, id = t[1]}
end

-- The agent's notes (e.g. fenced, the master's UUID): they live as long as this process does, so a
-- restarted agent finds them. Keys set to false are kept, keys given as nil are left unchanged.
function M.note(t)
    for k, v in pairs(t or {}) do state.notes[k] = v end
    return state.notes
end

-- Registers the application's hook; it is called at once when a topology is already known.
function M.on_topology(fn)
    if type(fn) ~= 'function' then error('on_topology expects a function') end
    table.insert(state.hooks, fn)
    if state.topology ~= nil then
        local ok, err = pcall(fn, state.topology)
        if not ok then log.error('shoal: topology hook failed: %s', tostring(err)) end
    end
    return fn
end

-- Called by the agent with the cluster topology; each hook runs in pcall so one bad hook cannot
-- keep the others from seeing it. Hooks run in the console fiber: they should be quick.
function M.topology(t)
    state.topology = t
    state.topology_version = state.topology_version + 1
    local errors = {}
    for _, fn in ipairs(state.hooks) do
        local ok, err = pcall(fn, t)
        if not ok then
            table.insert(errors, tostring(err))
            log.error('shoal: topology hook failed: %s', tostring(err))
        end
    end
    return {version = state.topology_version, hooks = #state.hooks, errors = errors}
end

return M

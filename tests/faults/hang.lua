-- SPDX-License-Identifier: Apache-2.0
-- tests/faults/hang.lua: a HAProxy CLI command for the fault suite only
-- (loaded through tests/faults/haproxy_hang.sh, never by the product's
-- templates).
--
--   hang SECONDS FILE
--
-- blocks the worker that reads it (one thread: the whole worker) while
-- FILE exists, and at most about SECONDS (1..60): a worker that is alive,
-- not stopped (/proc shows it sleeping), whose listening sockets keep
-- queueing connections and whose stats socket answers nothing. The test
-- releases it by removing FILE; the bound ends it even if the test died
-- first. Nothing here goes through a shell but a fixed `sleep`.

local STEP = "sleep 0.05" -- how soon a removed FILE is seen

local function exists(path)
    local f = io.open(path, "r")
    if f then
        f:close()
    end
    return f ~= nil
end

core.register_cli({"hang"}, "hang SECONDS FILE: block this worker while FILE exists (fault tests)",
    function(applet, _, seconds, file)
        local n = tonumber(seconds)
        if not n or n < 1 or n > 60 or not file or file == "" then
            applet:send("usage: hang SECONDS(1..60) FILE\n")
            return
        end
        -- os.time() has whole seconds: one more keeps the bound at least n
        local deadline = os.time() + math.floor(n) + 1
        while exists(file) and os.time() < deadline do
            os.execute(STEP)
        end
        applet:send("released\n")
    end)

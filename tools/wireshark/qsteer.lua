-- qsteer.lua - Wireshark/tshark dissector for qsteer's two UDP formats:
--   QRP v1 (include/qsteer/wire.h, docs/wire.md): requests, continuations,
--     backend reports and cancels; magic 0x5153 "QS", ports 7788 and 7789;
--   the agent's response datagrams (include/qsteer/agent_wire.h): magic 0x5152
--     "QR", sent from the agent's port to the client's.
-- Both are registered on UDP ports 7788 and 7789 (the magic tells them apart) and
-- as a UDP heuristic, so steered requests on a backend's port decode too.
-- Validation follows qs_qrp_parse_hdr / qs_qrp_parse_report / qs_qra_parse: a
-- message they refuse gets the field qrp.error (qra.error) with the dataplane's
-- reason name (short, magic, version, type, hdr-len, field) and an expert note.
--
-- usage: tshark -X lua_script:qsteer.lua -r in.pcap -Y qrp
--        or copy to ~/.local/lib/wireshark/plugins/ (docs/operations.md)

local QRP_MAGIC, QRA_MAGIC = 0x5153, 0x5152
local QRP_HDR_LEN, QRP_REPORT_LEN, QRP_TAG_LEN, QRA_LEN = 32, 56, 16, 48

local qrp = Proto("qrp", "qsteer Request Protocol")
local qra = Proto("qra", "qsteer agent response")

local qrp_types = { [1] = "request", [2] = "continuation", [3] = "backend report", [4] = "cancel" }
local qra_kinds = { [1] = "first token", [2] = "completion", [3] = "rejected",
	[4] = "cancelled", [5] = "cancel: not held" }

local f = qrp.fields
f.magic = ProtoField.uint16("qrp.magic", "Magic", base.HEX)
f.version = ProtoField.uint8("qrp.version", "Version", base.DEC)
f.type = ProtoField.uint8("qrp.type", "Type", base.DEC, qrp_types)
f.flags = ProtoField.uint16("qrp.flags", "Flags", base.HEX)
f.flag_last = ProtoField.bool("qrp.flags.last", "Last packet of the request", 16, nil, 0x0001)
f.flag_auth = ProtoField.bool("qrp.flags.auth", "Report tag follows the body", 16, nil, 0x0002)
f.flag_diff = ProtoField.bool("qrp.flags.difficulty", "Carries its difficulty", 16, nil, 0x0004)
f.difficulty = ProtoField.uint16("qrp.flags.difficulty_class", "Difficulty class", base.DEC, nil, 0x0018)
f.tenant = ProtoField.uint16("qrp.tenant", "Tenant", base.DEC)
f.request_id = ProtoField.uint64("qrp.request_id", "Request id (reports: sequence)", base.DEC)
f.prompt_tokens = ProtoField.uint32("qrp.prompt_tokens", "Prompt tokens", base.DEC)
f.max_new_tokens = ProtoField.uint32("qrp.max_new_tokens", "Max new tokens", base.DEC)
f.prefix_hash = ProtoField.uint32("qrp.prefix_hash", "Prefix hash", base.HEX)
f.priority = ProtoField.uint8("qrp.priority", "Priority", base.DEC)
f.slo_class = ProtoField.uint8("qrp.slo_class", "SLO class", base.DEC)
f.hdr_len = ProtoField.uint16("qrp.hdr_len", "Header length", base.DEC)
f.r_backend = ProtoField.uint16("qrp.report.backend_id", "Backend id", base.DEC)
f.r_flags = ProtoField.uint16("qrp.report.flags", "Report flags", base.HEX)
f.r_draining = ProtoField.bool("qrp.report.draining", "Draining", 16, nil, 0x0001)
f.r_waiting = ProtoField.uint32("qrp.report.waiting", "Waiting sequences", base.DEC)
f.r_running = ProtoField.uint32("qrp.report.running", "Running sequences", base.DEC)
f.r_kv_used = ProtoField.uint32("qrp.report.kv_used", "KV blocks used", base.DEC)
f.r_kv_total = ProtoField.uint32("qrp.report.kv_total", "KV blocks total", base.DEC)
f.r_decode_tps = ProtoField.uint32("qrp.report.decode_tps", "Decode tokens/s", base.DEC)
f.r_ttft = ProtoField.uint32("qrp.report.ttft_p99_us", "p99 TTFT (us)", base.DEC)
f.r_prefill = ProtoField.uint32("qrp.report.prefill_pending", "Pending prefill tokens", base.DEC)
f.r_received = ProtoField.uint64("qrp.report.received", "Requests received", base.DEC)
f.r_completed = ProtoField.uint64("qrp.report.completed", "Requests completed", base.DEC)
f.r_sent_ns = ProtoField.uint64("qrp.report.sent_ns", "Agent clock at sending (ns)", base.DEC)
f.r_tag = ProtoField.bytes("qrp.report.tag", "Tag (SipHash-2-4-128 over header and body)")
f.payload = ProtoField.bytes("qrp.payload", "Request payload")
f.error = ProtoField.string("qrp.error", "Refused by the dataplane as")

local g = qra.fields
g.magic = ProtoField.uint16("qra.magic", "Magic", base.HEX)
g.version = ProtoField.uint8("qra.version", "Version", base.DEC)
g.kind = ProtoField.uint8("qra.kind", "Kind", base.DEC, qra_kinds)
g.backend = ProtoField.uint16("qra.backend_id", "Backend id", base.DEC)
g.flags = ProtoField.uint16("qra.flags", "Flags", base.HEX)
g.request_id = ProtoField.uint64("qra.request_id", "Request id", base.DEC)
g.tokens = ProtoField.uint32("qra.tokens", "Tokens generated", base.DEC)
g.preemptions = ProtoField.uint32("qra.preemptions", "Preemptions", base.DEC)
g.recv_ns = ProtoField.uint64("qra.recv_ns", "Agent clock, request complete (ns)", base.DEC)
g.first_ns = ProtoField.uint64("qra.first_ns", "Agent clock, first token (ns)", base.DEC)
g.event_ns = ProtoField.uint64("qra.event_ns", "Agent clock, this event (ns)", base.DEC)
g.error = ProtoField.string("qra.error", "Refused as")

local e_qrp = ProtoExpert.new("qrp.malformed", "QRP message the dataplane refuses",
	expert.group.MALFORMED, expert.severity.WARN)
local e_qra = ProtoExpert.new("qra.malformed", "Response datagram a client refuses",
	expert.group.MALFORMED, expert.severity.WARN)
qrp.experts = { e_qrp }
qra.experts = { e_qra }

local function refuse(tree, field, ex, why)
	tree:add(field, why):set_generated()
	tree:add_proto_expert_info(ex, "refused: " .. why)
end

local function dissect_qrp(tvb, pinfo, root)
	local len = tvb:len()
	pinfo.cols.protocol = "QRP"
	local t = root:add(qrp, tvb(0, math.min(len, QRP_HDR_LEN)))
	t:add(f.magic, tvb(0, 2))
	if len < QRP_HDR_LEN then
		refuse(t, f.error, e_qrp, "short")
		pinfo.cols.info = "QRP (short)"
		return len
	end
	local version, typ = tvb(2, 1):uint(), tvb(3, 1):uint()
	t:add(f.version, tvb(2, 1))
	t:add(f.type, tvb(3, 1))
	local ft = t:add(f.flags, tvb(4, 2))
	ft:add(f.flag_last, tvb(4, 2))
	ft:add(f.flag_auth, tvb(4, 2))
	if bit.band(tvb(4, 2):uint(), 0x0004) ~= 0 then
		ft:add(f.flag_diff, tvb(4, 2))
		ft:add(f.difficulty, tvb(4, 2))
	end
	t:add(f.tenant, tvb(6, 2))
	t:add(f.request_id, tvb(8, 8))
	t:add(f.prompt_tokens, tvb(16, 4))
	t:add(f.max_new_tokens, tvb(20, 4))
	t:add(f.prefix_hash, tvb(24, 4))
	t:add(f.priority, tvb(28, 1))
	t:add(f.slo_class, tvb(29, 1))
	t:add(f.hdr_len, tvb(30, 2))
	local flags, hdr_len = tvb(4, 2):uint(), tvb(30, 2):uint()
	local name = qrp_types[typ] or ("type " .. typ)
	pinfo.cols.info = string.format("QRP %s id=%s tenant=%u", name,
		tostring(tvb(8, 8):uint64()), tvb(6, 2):uint())
	-- the checks of qs_qrp_parse_hdr, in its order
	local why
	if version ~= 1 then
		why = "version"
	elseif typ < 1 or typ > 4 then
		why = "type"
	elseif hdr_len < QRP_HDR_LEN or hdr_len > len then
		why = "hdr-len"
	elseif tvb(28, 1):uint() > 3 or tvb(29, 1):uint() > 3 then
		why = "field"
	elseif bit.band(flags, typ == 3 and 0xfffc or typ == 1 and 0xffe2 or 0xfffe) ~= 0 then
		why = "field" -- bit 1 (tag follows) only on reports, 2-4 (difficulty) on requests
	elseif bit.band(flags, 0x0018) ~= 0 and bit.band(flags, 0x0004) == 0 then
		why = "field" -- difficulty bits without their flag
	elseif bit.band(flags, 2) ~= 0 and hdr_len ~= QRP_HDR_LEN then
		why = "field"
	end
	if why then
		refuse(t, f.error, e_qrp, why)
		pinfo.cols.info:append(" [refused: " .. why .. "]")
		return len
	end
	if typ == 3 then
		local rest = len - hdr_len
		local tagged = bit.band(flags, 2) ~= 0
		if rest < QRP_REPORT_LEN + (tagged and QRP_TAG_LEN or 0) then
			refuse(t, f.error, e_qrp, "short")
			return len
		end
		local b = tvb(hdr_len, QRP_REPORT_LEN)
		local r = t:add(b, "Backend report")
		r:add(f.r_backend, b(0, 2))
		local rf = r:add(f.r_flags, b(2, 2))
		rf:add(f.r_draining, b(2, 2))
		r:add(f.r_waiting, b(4, 4))
		r:add(f.r_running, b(8, 4))
		r:add(f.r_kv_used, b(12, 4))
		r:add(f.r_kv_total, b(16, 4))
		r:add(f.r_decode_tps, b(20, 4))
		r:add(f.r_ttft, b(24, 4))
		r:add(f.r_prefill, b(28, 4))
		r:add(f.r_received, b(32, 8))
		r:add(f.r_completed, b(40, 8))
		r:add(f.r_sent_ns, b(48, 8))
		if tagged then
			-- checking it needs the backend's key, which a capture never has
			r:add(f.r_tag, tvb(hdr_len + QRP_REPORT_LEN, QRP_TAG_LEN))
		end
		pinfo.cols.info = string.format("QRP report backend=%u seq=%s waiting=%u running=%u kv=%u/%u",
			b(0, 2):uint(), tostring(tvb(8, 8):uint64()), b(4, 4):uint(), b(8, 4):uint(),
			b(12, 4):uint(), b(16, 4):uint())
		if bit.band(b(2, 2):uint(), 0xfffe) ~= 0 then
			refuse(t, f.error, e_qrp, "field")
		end
	elseif len > hdr_len then
		t:add(f.payload, tvb(hdr_len, len - hdr_len))
	end
	return len
end

local function dissect_qra(tvb, pinfo, root)
	local len = tvb:len()
	pinfo.cols.protocol = "QRA"
	local t = root:add(qra, tvb(0, math.min(len, QRA_LEN)))
	t:add(g.magic, tvb(0, 2))
	if len < QRA_LEN then
		refuse(t, g.error, e_qra, "short")
		pinfo.cols.info = "QRA (short)"
		return len
	end
	local version, kind = tvb(2, 1):uint(), tvb(3, 1):uint()
	t:add(g.version, tvb(2, 1))
	t:add(g.kind, tvb(3, 1))
	t:add(g.backend, tvb(4, 2))
	t:add(g.flags, tvb(6, 2))
	t:add(g.request_id, tvb(8, 8))
	t:add(g.tokens, tvb(16, 4))
	t:add(g.preemptions, tvb(20, 4))
	t:add(g.recv_ns, tvb(24, 8))
	t:add(g.first_ns, tvb(32, 8))
	t:add(g.event_ns, tvb(40, 8))
	pinfo.cols.info = string.format("QRA %s id=%s backend=%u tokens=%u",
		qra_kinds[kind] or ("kind " .. kind), tostring(tvb(8, 8):uint64()),
		tvb(4, 2):uint(), tvb(16, 4):uint())
	-- the checks of qs_qra_parse, in its order
	local why
	if version ~= 1 then
		why = "version"
	elseif kind < 1 or kind > 5 then
		why = "type"
	elseif tvb(6, 2):uint() ~= 0 then
		why = "field"
	end
	if why then
		refuse(t, g.error, e_qra, why)
	end
	return len
end

-- On the QRP ports: anything that starts with either magic is ours.
function qrp.dissector(tvb, pinfo, root)
	if tvb:len() < 2 then
		return 0
	end
	local magic = tvb(0, 2):uint()
	if magic == QRP_MAGIC then
		return dissect_qrp(tvb, pinfo, root)
	elseif magic == QRA_MAGIC then
		return dissect_qra(tvb, pinfo, root)
	end
	return 0
end

-- Elsewhere (a backend's port, a client's port): a whole header or response with
-- the right magic and version.
local function heuristic(tvb, pinfo, root)
	local len = tvb:len()
	if len < QRP_HDR_LEN or tvb(2, 1):uint() ~= 1 then
		return false
	end
	local magic = tvb(0, 2):uint()
	if magic == QRP_MAGIC then
		dissect_qrp(tvb, pinfo, root)
		return true
	elseif magic == QRA_MAGIC and len >= QRA_LEN then
		dissect_qra(tvb, pinfo, root)
		return true
	end
	return false
end

local udp_port = DissectorTable.get("udp.port")
udp_port:add(7788, qrp)
udp_port:add(7789, qrp)
qrp:register_heuristic("udp", heuristic)

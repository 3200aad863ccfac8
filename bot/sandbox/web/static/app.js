/*
 * Sicheng sandbox page: a small Telegram-like client for the simulated residents of the local emulator.
 *
 * Plain JS, no build step. It talks only to its own server:
 *   /sandbox/api/...   the emulator's resident-side API (see docs/sandbox.md)
 *   /sandbox/page/...  two read-only helpers from bot/sandbox/web.py (a person's chats, the command menu)
 *
 * Safety: bot and user text is only ever put into the page as text nodes (textContent / append(string)); formatting
 * comes from Telegram message entities turned into elements here. No innerHTML with message content anywhere.
 */
"use strict";

(() => {
  const API = "/sandbox/api";
  const PAGE_API = "/sandbox/page";
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const BOT = boot.bot;
  // The sketch map in the location dialog covers this box around the (invented) demo community.
  const MAP = { north: 31.2334, south: 31.2274, west: 121.4687, east: 121.4787, width: 600, height: 360 };

  // ---------------------------------------------------------------- UI strings (Chinese first, English for en users)
  const STRINGS = {
    zh: {
      brand: "四城同创 · 沙盒", iam: "我是", newResident: "新居民", chats: "会话",
      footer: "本机模拟的 Telegram：机器人真实运行，消息不会离开这台电脑。",
      back: "返回", cancelReply: "取消回复", commands: "命令", sendPhoto: "发送照片", choosePhoto: "选择照片",
      sendLocation: "发送位置", message: "消息", placeholder: "输入消息…", keyboard: "键盘", send: "发送",
      newResidentHint: "新建一位模拟居民，然后以 TA 的身份与机器人聊天。", name: "名字", language: "Telegram 语言",
      joinGroups: "同时加入群组", cancel: "取消", create: "创建", caption: "说明（可选）",
      mapHint: "点击示意图选点，或直接输入经纬度。示意图不是真实地图（沙盒不连外网）。",
      latitude: "纬度", longitude: "经度", personas: "示范角色", others: "其他居民", bot: "机器人",
      members: (n) => `${n} 位成员`, startTitle: "这个机器人能做什么？",
      startText: "四城同创社区助手：学习答题、随手拍、志愿服务、文明积分。点“开始”与它对话。", start: "开始",
      noMessages: "还没有消息", unread: "有新消息", edited: "已编辑", reply: "回复", you: "我", photo: "照片", location: "位置",
      quiz: "测验", poll: "投票", anonymous: "匿名", closed: "已结束", vote: "投票", retract: "撤回投票",
      votes: (n) => `${n} 人已参与`, joined: (names) => `${names} 加入了群组`, left: (name) => `${name} 离开了群组`,
      unsupported: "沙盒不支持这种按钮", copied: "已复制", openLink: "打开链接？", offline: "连接中断，正在重连…",
      requestLocation: "机器人请求您的位置", notStartLink: "沙盒里只能打开本机器人的 t.me 链接",
      created: (name) => `已创建 ${name}`, noCommands: "机器人还没有设置命令", unknownMessage: "（沙盒无法显示的消息）",
    },
    en: {
      brand: "Sicheng · Sandbox", iam: "I am", newResident: "New resident", chats: "Chats",
      footer: "A local stand-in for Telegram: the bot is real, nothing leaves this computer.",
      back: "Back", cancelReply: "Cancel reply", commands: "Commands", sendPhoto: "Send photo", choosePhoto: "Choose a photo",
      sendLocation: "Send location", message: "Message", placeholder: "Message…", keyboard: "Keyboard", send: "Send",
      newResidentHint: "Create a simulated resident, then chat with the bot as them.", name: "Name",
      language: "Telegram language", joinGroups: "Also join groups", cancel: "Cancel", create: "Create",
      caption: "Caption (optional)", mapHint: "Click the sketch to pick a point, or type the coordinates. It is a sketch, not a real map (the sandbox is offline).",
      latitude: "Latitude", longitude: "Longitude", personas: "Demo roles", others: "Other residents", bot: "bot",
      members: (n) => `${n} members`, startTitle: "What can this bot do?",
      startText: "Sicheng community assistant: quizzes, photo reports, volunteering, civic points. Press Start to begin.",
      start: "Start", noMessages: "No messages yet", unread: "new messages", edited: "edited", reply: "Reply", you: "Me", photo: "Photo",
      location: "Location", quiz: "Quiz", poll: "Poll", anonymous: "anonymous", closed: "closed", vote: "Vote",
      retract: "Retract vote", votes: (n) => `${n} voted`, joined: (names) => `${names} joined the group`,
      left: (name) => `${name} left the group`, unsupported: "The sandbox does not support this button",
      copied: "Copied", openLink: "Open this link?", offline: "Connection lost, reconnecting…",
      requestLocation: "The bot asks for your location", notStartLink: "The sandbox only opens t.me links of this bot",
      created: (name) => `Created ${name}`, noCommands: "The bot has no commands yet", unknownMessage: "(a message the sandbox cannot show)",
    },
  };
  let lang = "zh";
  const t = (key, ...args) => {
    const value = STRINGS[lang][key] ?? STRINGS.zh[key] ?? key;
    return typeof value === "function" ? value(...args) : value;
  };

  function applyI18n() {
    // <html lang> stays zh-Hans even for English chrome: messages mix both, and it picks the Simplified Chinese
    // glyphs of CJK fonts.
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-title]")) {
      el.title = t(el.dataset.i18nTitle);
      el.setAttribute("aria-label", el.title);
    }
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  }

  // ---------------------------------------------------------------- state
  const state = {
    personas: [],
    users: [],
    me: null, // {id, name, language_code, role_label?}
    chats: [], // from /sandbox/page/chats
    seen: new Map(), // chat id -> last message version the person has looked at (for unread dots)
    chat: null, // the open chat: {id, info, views, els (by message id), lastId, version, replyKeyboard}
    eventsVersion: 0,
    pending: new Map(), // callback query id -> the pressed button element, until the bot answers
    answers: new Map(), // callback answers seen in events before the press request returned (a fast bot)
    votes: loadVotes(), // "user:poll" -> option ids chosen on this page (Telegram shows results after a vote)
    replyTo: null, // message view being replied to
    commands: [],
    keyboardShown: true,
    switching: Promise.resolve(), // settles once the person chosen last has their chat open
  };

  /**
   * The emulator only tells a poll's counts, not who chose what, so the page remembers its own votes (to show
   * results instead of options after voting, as Telegram does). Stored per server run: poll ids restart with it.
   */
  function loadVotes() {
    const key = `sicheng.sandbox.votes.${boot.instance}`;
    for (const old of Object.keys(localStorage)) {
      if (old.startsWith("sicheng.sandbox.votes.") && old !== key) localStorage.removeItem(old);
    }
    try {
      return new Map(Object.entries(JSON.parse(localStorage.getItem(key) || "{}")));
    } catch {
      return new Map();
    }
  }

  function saveVotes() {
    localStorage.setItem(`sicheng.sandbox.votes.${boot.instance}`, JSON.stringify(Object.fromEntries(state.votes)));
  }

  const $ = (id) => document.getElementById(id);
  const els = {
    app: $("app"), person: $("person"), personRole: $("person-role"), chatList: $("chat-list"),
    messages: $("messages"), title: $("chat-title"), sub: $("chat-sub"), avatar: $("chat-avatar"),
    text: $("text"), composer: $("composer"), replyKb: $("reply-kb"), kbToggle: $("kb-toggle"),
    cmdMenu: $("cmd-menu"), cmdBtn: $("cmd-btn"), photoInput: $("photo-input"), toasts: $("toasts"),
    replyPreview: $("reply-preview"), replyPreviewText: $("reply-preview-text"),
  };

  // ---------------------------------------------------------------- small helpers
  async function api(path, { method = "GET", body, form } = {}) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    } else if (form !== undefined) {
      init.body = form; // the browser sets the multipart boundary itself
    }
    const response = await fetch(path, init);
    let data;
    try {
      data = await response.json();
    } catch {
      throw new Error(`${response.status} ${response.statusText}`);
    }
    if (!data.ok) throw new Error(data.error || data.description || `${response.status}`);
    return data.result;
  }

  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) el.append(child);
    return el;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const colour = (id) => `c${Math.abs(Number(id)) % 7}`;
  const initial = (name) => Array.from((name || "?").trim())[0] || "?";
  const isGroup = (chatId) => Number(chatId) < 0;

  function avatar(name, id, { bot = false, small = false } = {}) {
    return h("span", { class: `avatar ${bot ? "bot" : colour(id)}${small ? " small" : ""}`, "aria-hidden": "true" }, initial(name));
  }

  function timeOf(unix) {
    if (!unix) return "";
    const d = new Date(unix * 1000);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  function toast(message, { error = false, ms = 2600 } = {}) {
    const el = h("div", { class: `toast${error ? " error" : ""}` }, message);
    els.toasts.append(el);
    setTimeout(() => el.remove(), ms);
  }

  /** An alert dialog like Telegram's show_alert; resolves true for OK. */
  function alertDialog(title, text, { confirm = false } = {}) {
    const dialog = $("alert-dialog");
    $("alert-title").textContent = title;
    $("alert-text").textContent = text;
    $("alert-cancel").hidden = !confirm;
    $("alert-ok").value = "ok";
    if (dialog.open) dialog.close();
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
  }

  // ---------------------------------------------------------------- message entities -> DOM (the safe renderer)
  const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:", "tel:", "tg:"]);

  /** An absolute URL with a harmless scheme, or null (javascript:, data: and relative links are dropped). */
  function safeUrl(raw) {
    try {
      const url = new URL(raw);
      return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  function link(href) {
    const url = safeUrl(href);
    if (!url) return h("span");
    return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" });
  }

  /** The element for one entity; its children are filled in by the caller. */
  function entityElement(entity, covered) {
    switch (entity.type) {
      case "bold": return h("b");
      case "italic": return h("i");
      case "underline": return h("u");
      case "strikethrough": return h("s");
      case "code": return h("code");
      case "pre": {
        const code = h("code", entity.language ? { class: `language-${entity.language}` } : {});
        return { outer: h("pre", {}, code), inner: code };
      }
      case "spoiler": return h("span", { class: "spoiler", title: "spoiler" });
      case "blockquote": return h("blockquote");
      case "expandable_blockquote": return h("blockquote", { class: "expandable" });
      case "text_link": return link(entity.url || "");
      case "url": return link(/^[a-z][a-z0-9+.-]*:/i.test(covered) ? covered : `http://${covered}`);
      case "email": return link(`mailto:${covered}`);
      case "phone_number": return link(`tel:${covered.replace(/[^\d+]/g, "")}`);
      case "bot_command": return h("button", { type: "button", class: "inline-link", dataset: { command: covered } });
      case "mention": case "text_mention": return h("span", { class: "mention" });
      case "hashtag": case "cashtag": return h("span", { class: "hashtag" });
      default: return h("span");
    }
  }

  /**
   * Text plus entities as a DocumentFragment. Entity offsets and lengths are UTF-16 code units, which is exactly
   * what JS string indices are, so slicing is direct. Entities nest (bold inside a link...); an entity that
   * overlaps its parent's end without nesting is clipped to the parent, which is what Telegram clients show.
   * Only bot_command entities become tappable commands (Telegram marks them, in the emulator too): a slash in other
   * text, such as "</b>" or "a/b", stays text. linkCommands=false renders them as text too (inside a button).
   */
  function renderRich(text, entities, linkCommands = true) {
    const fragment = document.createDocumentFragment();
    if (!text) return fragment;
    const list = (entities || [])
      .filter((e) => Number.isInteger(e.offset) && e.length > 0)
      .filter((e) => linkCommands || e.type !== "bot_command")
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    build(fragment, text, 0, text.length, list);
    return fragment;
  }

  function build(parent, text, from, to, entities) {
    let pos = from;
    let i = 0;
    while (i < entities.length) {
      const entity = entities[i];
      const start = Math.max(entity.offset, pos);
      const end = Math.min(entity.offset + entity.length, to);
      let j = i + 1;
      while (j < entities.length && entities[j].offset < end) j += 1;
      if (start < end) {
        if (start > pos) parent.append(text.slice(pos, start));
        const made = entityElement(entity, text.slice(entity.offset, entity.offset + entity.length));
        const outer = made.outer || made;
        const inner = made.inner || made;
        const nested = entities.slice(i + 1, j);
        // A button or a link cannot hold another one: commands inside them stay text.
        build(inner, text, start, end, NO_COMMANDS_INSIDE.has(inner.tagName) ? nested.filter((e) => e.type !== "bot_command") : nested);
        parent.append(outer);
        pos = end;
      }
      i = j;
    }
    if (pos < to) parent.append(text.slice(pos, to));
  }

  const NO_COMMANDS_INSIDE = new Set(["CODE", "PRE", "A", "BUTTON"]);

  // ---------------------------------------------------------------- people
  async function loadPeople() {
    const [personas, users] = await Promise.all([fetch(`${API}/personas`).then((r) => r.json()), api(`${API}/users`)]);
    state.personas = personas;
    state.users = users;
    const known = new Set(personas.map((p) => p.id));
    els.person.replaceChildren(
      h("optgroup", { label: t("personas") },
        personas.map((p) => h("option", { value: p.id }, `${p.name} · ${p.role_label}`))),
    );
    const others = users.filter((u) => !known.has(u.id));
    if (others.length) {
      els.person.append(h("optgroup", { label: t("others") },
        others.map((u) => h("option", { value: u.id }, `${[u.first_name, u.last_name].filter(Boolean).join(" ")} · ${u.language_code || ""}`))));
    }
  }

  function person(id) {
    const persona = state.personas.find((p) => p.id === id);
    if (persona) return { ...persona };
    const user = state.users.find((u) => u.id === id);
    return user ? { id: user.id, name: user.first_name, language_code: user.language_code || "zh-hans", role_label: "" } : null;
  }

  function switchPerson(id, chatId) {
    // Whatever is sent meanwhile waits for the new person's chat: typed right after choosing someone, a message
    // must not go to the chat still on screen (the previous person's) or be dropped.
    const run = openPerson(id, chatId);
    state.switching = run.catch(() => {});
    return run;
  }

  async function openPerson(id, chatId) {
    const me = person(id) || person(state.personas[0]?.id);
    if (!me) return;
    state.me = me;
    state.seen.clear();
    state.replyTo = null;
    lang = (me.language_code || "").toLowerCase().startsWith("en") ? "en" : "zh";
    applyI18n();
    await loadPeople(); // option labels follow the UI language
    els.person.value = String(me.id);
    // the role is in the option text; this line adds what the bot sees of the person
    els.personRole.textContent = `ID ${me.id} · language_code ${me.language_code || "-"}`;
    localStorage.setItem("sicheng.sandbox.person", String(me.id));
    state.commands = await api(`${PAGE_API}/commands?language_code=${encodeURIComponent(me.language_code || "")}`).catch(() => []);
    await loadChats({ markSeen: true });
    const target = state.chats.find((c) => c.id === Number(chatId)) || state.chats[0];
    await openChat(target.id);
  }

  // ---------------------------------------------------------------- chat list
  async function loadChats({ markSeen = false } = {}) {
    if (!state.me) return;
    const forId = state.me.id;
    const chats = await api(`${PAGE_API}/chats?user_id=${forId}`);
    if (!state.me || state.me.id !== forId) return; // switched person meanwhile
    state.chats = chats;
    for (const chat of chats) {
      if (markSeen || !state.seen.has(chat.id) || state.chat?.id === chat.id) state.seen.set(chat.id, chat.version);
    }
    renderChatList();
  }

  function renderChatList() {
    els.chatList.replaceChildren(...state.chats.map((chat) => {
      const current = state.chat?.id === chat.id;
      const last = chat.last;
      let preview = last ? last.text : "";
      if (last && isGroup(chat.id) && last.sender) preview = `${last.sender}: ${preview}`;
      else if (last && !last.from_bot && !isGroup(chat.id)) preview = `${t("you")}: ${preview}`;
      const unread = !current && chat.version > (state.seen.get(chat.id) ?? 0);
      return h("li", {},
        h("button", {
          type: "button", class: "chat-item", "aria-current": current ? "true" : "false",
          dataset: { chat: chat.id }, onclick: () => openChat(chat.id),
        },
        avatar(chat.title, chat.id, { bot: chat.is_bot }),
        h("span", { class: "chat-item-title" }, chat.title, chat.is_bot ? h("span", { class: "bot-badge" }, t("bot")) : null),
        h("span", { class: "chat-item-time" }, last ? timeOf(last.date) : ""),
        h("span", { class: "chat-item-preview" }, preview || (chat.is_bot ? `@${chat.username}` : t("members", chat.members))),
        unread ? h("span", { class: "unread", role: "img", "aria-label": t("unread") }) : null));
    }));
  }

  // ---------------------------------------------------------------- the open chat
  async function openChat(chatId) {
    const info = state.chats.find((c) => c.id === chatId);
    if (!info) return;
    state.chat = { id: chatId, info, views: new Map(), els: new Map(), lastId: 0, version: 0, replyKeyboard: null };
    state.replyTo = null;
    renderReplyPreview();
    els.app.classList.add("chat-open");
    els.title.textContent = info.title;
    const headAvatar = avatar(info.title, info.id, { bot: info.is_bot });
    headAvatar.id = "chat-avatar";
    els.avatar.replaceWith(headAvatar);
    els.avatar = headAvatar;
    setSubtitle();
    els.messages.replaceChildren();
    renderChatList();
    history.replaceState(null, "", `#${state.me.id}/${chatId}`);
    await refreshOpenChat();
    scrollToBottom();
  }

  function setSubtitle(offline = false) {
    const info = state.chat?.info;
    els.sub.classList.toggle("offline", offline);
    if (offline) els.sub.textContent = t("offline");
    else if (info) els.sub.textContent = info.is_bot ? `@${info.username} · ${t("bot")}` : t("members", info.members);
  }

  // One refresh at a time; events arriving meanwhile ask for one more round instead of racing.
  let refreshing = null;
  let refreshAgain = false;
  function refreshOpenChat() {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          refreshAgain = false;
          await loadChanges();
        } while (refreshAgain);
      } catch (error) {
        toast(String(error.message || error), { error: true });
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  async function loadChanges() {
    const chat = state.chat;
    if (!chat) return;
    const result = await api(`${API}/chats/${chat.id}/messages?after=${chat.version}`);
    if (state.chat !== chat) return; // another chat was opened meanwhile
    const stick = nearBottom();
    for (const view of result.messages) {
      chat.views.set(view.message_id, view);
      placeMessage(chat, view);
    }
    for (const id of result.deleted) {
      chat.views.delete(id);
      chat.els.get(id)?.remove();
      chat.els.delete(id);
    }
    chat.version = Math.max(chat.version, result.version);
    chat.replyKeyboard = result.reply_keyboard;
    // force_reply: Telegram opens a reply to that bot message, so the next text answers it (works in groups too).
    const newest = chat.views.get(chat.lastId);
    if (newest?.from_bot && newest.reply_keyboard?.force_reply && result.messages.includes(newest)) setReplyTo(newest);
    renderReplyKeyboard();
    renderIntro();
    const latest = Math.max(0, ...Array.from(chat.views.values(), (v) => v.version));
    state.seen.set(chat.id, Math.max(state.seen.get(chat.id) ?? 0, latest));
    if (stick || result.messages.some((v) => isMine(v))) scrollToBottom();
  }

  /** Insert or replace a message element, keeping message-id order (edits happen in place). */
  function placeMessage(chat, view) {
    const el = renderMessage(view);
    const id = view.message_id;
    const old = chat.els.get(id);
    chat.els.set(id, el);
    if (old) {
      old.replaceWith(el);
    } else if (id > chat.lastId) {
      els.messages.append(el); // the usual case: a new message at the end
      chat.lastId = id;
    } else {
      const later = [...chat.els.keys()].filter((other) => other > id).sort((a, b) => a - b)[0];
      els.messages.insertBefore(el, chat.els.get(later));
    }
  }

  function renderIntro() {
    const chat = state.chat;
    const existing = els.messages.querySelector(".intro");
    const empty = chat.views.size === 0;
    if (!empty) {
      existing?.remove();
      return;
    }
    if (existing) return;
    const intro = chat.info.is_bot
      ? h("div", { class: "intro" },
        avatar(chat.info.title, chat.id, { bot: true }),
        h("h2", {}, t("startTitle")),
        h("p", {}, t("startText")),
        h("button", { type: "button", class: "btn primary", onclick: () => sendText("/start") }, t("start")))
      : h("div", { class: "intro" }, h("p", {}, t("noMessages")));
    els.messages.append(intro);
  }

  const isMine = (view) => view.message?.from?.id === state.me?.id && !view.from_bot;

  function nearBottom() {
    const m = els.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function scrollToBottom() {
    els.messages.scrollTop = els.messages.scrollHeight;
  }

  // ---------------------------------------------------------------- one message
  function senderName(message) {
    const from = message.from || {};
    return [from.first_name, from.last_name].filter(Boolean).join(" ") || from.username || "";
  }

  function renderMessage(view) {
    const message = view.message;
    const service = serviceText(message);
    if (service !== null) return h("div", { class: "service", dataset: { id: view.message_id } }, service);

    const mine = isMine(view);
    const inGroup = isGroup(state.chat.id);
    const from = message.from || {};
    const body = h("div", { class: "msg-body" });
    const bubble = h("div", { class: "bubble" });
    if (inGroup && !mine) bubble.append(h("div", { class: `sender ${from.is_bot ? "" : colour(from.id)}` }, senderName(message)));
    if (message.reply_to_message) bubble.append(renderQuote(message.reply_to_message));

    let hasContent = false;
    if (view.photo_url) {
      bubble.classList.add("media");
      bubble.append(h("a", { class: "photo-link", href: view.photo_url, target: "_blank", rel: "noopener" },
        h("img", { class: "photo", src: view.photo_url, alt: view.caption || t("photo"), loading: "lazy", onload: onMediaLoad })));
      hasContent = true;
    }
    if (view.document_url) {
      const doc = message.document || {};
      bubble.append(h("a", { href: view.document_url, download: doc.file_name || "file" }, `📄 ${doc.file_name || "file"}`));
      hasContent = true;
    }
    if (view.location) {
      const { latitude, longitude } = view.location;
      bubble.classList.add("media");
      bubble.append(h("div", { class: "loc-card", role: "img", "aria-label": t("location") }),
        h("div", { class: "text loc-text" }, `📍 ${latitude.toFixed(6)}, ${longitude.toFixed(6)}`));
      hasContent = true;
    }
    if (view.poll) {
      bubble.append(renderPoll(view));
      hasContent = true;
    }
    const text = message.text ?? message.caption;
    if (text) {
      const entities = message.text !== undefined ? message.entities : message.caption_entities;
      bubble.append(h("div", { class: "text" }, renderRich(text, entities)));
      hasContent = true;
    }
    if (!hasContent) bubble.append(h("div", { class: "text" }, t("unknownMessage")));
    bubble.append(h("span", { class: "meta" }, view.edited ? `${t("edited")} ` : "", timeOf(message.edit_date || message.date)));
    body.append(bubble);
    if (view.inline_keyboard) body.append(renderInlineKeyboard(view));

    const replyButton = h("button", {
      type: "button", class: "icon-btn reply-btn", title: t("reply"), "aria-label": t("reply"),
      onclick: () => setReplyTo(view),
    }, "↩");
    const children = [];
    if (inGroup && !mine) children.push(avatar(senderName(message), from.id, { bot: from.is_bot, small: true }));
    children.push(body, replyButton);
    return h("div", { class: `msg ${mine ? "out" : "in"}`, dataset: { id: view.message_id } }, children);
  }

  function serviceText(message) {
    if (message.new_chat_members) return t("joined", message.new_chat_members.map((u) => u.first_name).join(lang === "en" ? ", " : "、"));
    if (message.left_chat_member) return t("left", message.left_chat_member.first_name);
    if (message.group_chat_created || message.supergroup_chat_created) return "✨";
    if (message.new_chat_title) return `✏️ ${message.new_chat_title}`;
    if (message.pinned_message) return `📌 ${message.pinned_message.text || ""}`;
    return null;
  }

  function renderQuote(replied) {
    const who = replied.from?.id === state.me.id ? t("you") : senderName(replied);
    const text = replied.text || replied.caption || (replied.photo ? t("photo") : replied.poll ? replied.poll.question : "…");
    return h("button", {
      type: "button", class: "quote", onclick: () => jumpTo(replied.message_id),
    }, h("b", {}, who), text);
  }

  function jumpTo(messageId) {
    const el = state.chat.els.get(messageId);
    if (!el) return;
    el.scrollIntoView({ block: "center", behavior: "smooth" });
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  function onMediaLoad() {
    // Images change the height after layout: keep the view pinned to the newest message if it was there.
    if (els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 400) scrollToBottom();
  }

  // ---------------------------------------------------------------- inline keyboards
  function renderInlineKeyboard(view) {
    return h("div", { class: "ikb" }, view.inline_keyboard.map((row) => h("div", { class: "ikb-row" },
      row.map((button) => {
        const corner = button.url ? "↗" : button.copy_text ? "⧉" : button.switch_inline_query !== undefined ? "↪" : null;
        return h("button", {
          type: "button", class: "ikb-btn", title: button.text,
          onclick: (event) => pressInline(view, button, event.currentTarget),
        }, button.text, corner ? h("span", { class: "corner", "aria-hidden": "true" }, corner) : null);
      }))));
  }

  async function pressInline(view, button, el) {
    if (button.callback_data !== undefined) {
      el.classList.add("loading");
      try {
        const result = await api(`${API}/chats/${state.chat.id}/callbacks`, {
          method: "POST", body: { user_id: state.me.id, message_id: view.message_id, data: button.callback_data },
        });
        const early = state.answers.get(result.callback_query_id);
        if (early) showCallbackAnswer(el, early);
        else {
          // Telegram gives up on the spinner after a while even if the bot never answers.
          state.pending.set(result.callback_query_id, el);
          setTimeout(() => {
            if (state.pending.delete(result.callback_query_id)) el.classList.remove("loading");
          }, 10000);
        }
      } catch (error) {
        el.classList.remove("loading");
        toast(error.message, { error: true });
      }
    } else if (button.url) {
      await openUrl(button.url);
    } else if (button.copy_text) {
      await navigator.clipboard?.writeText(button.copy_text.text).catch(() => {});
      toast(t("copied"));
    } else if (button.web_app || button.login_url) {
      await openUrl((button.web_app || button.login_url).url);
    } else {
      toast(t("unsupported"));
    }
  }

  function showCallbackAnswer(el, answer) {
    el?.classList.remove("loading");
    if (answer.text) {
      if (answer.show_alert) alertDialog(BOT.name, answer.text);
      else toast(answer.text);
    }
    if (answer.url) openUrl(answer.url);
  }

  /** t.me/<bot>?start=<payload> (or tg://resolve?domain=<bot>&start=) -> the payload; null for anything else. */
  function startPayload(href) {
    let url;
    try {
      url = new URL(href);
    } catch {
      return null;
    }
    let name = null;
    if (["t.me", "telegram.me", "www.t.me"].includes(url.hostname)) name = url.pathname.replace(/^\/+|\/+$/g, "");
    else if (url.protocol === "tg:" && url.hostname === "resolve") name = url.searchParams.get("domain");
    if (!name) return null;
    if (name.toLowerCase() !== BOT.username.toLowerCase()) return undefined; // Telegram, but not our bot
    return url.searchParams.get("start") ?? "";
  }

  /** What a Telegram client does with a link: deep links to the bot start a private chat; others open outside. */
  async function openUrl(href) {
    const payload = startPayload(href);
    if (payload === undefined) {
      toast(t("notStartLink"));
      return;
    }
    if (payload !== null) {
      const privateChat = state.chats.find((c) => c.is_bot);
      if (state.chat?.id !== privateChat.id) await openChat(privateChat.id);
      await sendText(payload ? `/start ${payload}` : "/start");
      return;
    }
    const url = safeUrl(href);
    if (url && await alertDialog(t("openLink"), url, { confirm: true })) window.open(url, "_blank", "noopener,noreferrer");
  }

  // ---------------------------------------------------------------- polls (a quiz card)
  function renderPoll(view) {
    const poll = view.poll;
    const key = `${state.me.id}:${poll.id}`;
    const mine = state.votes.get(key);
    const quiz = poll.type === "quiz";
    const showResults = poll.is_closed || (mine && mine.length > 0);
    const kind = [quiz ? t("quiz") : t("poll"), poll.is_anonymous ? t("anonymous") : null, poll.is_closed ? t("closed") : null]
      .filter(Boolean).join(" · ");
    const card = h("div", { class: `poll${poll.allows_multiple_answers ? " multi" : ""}` },
      h("div", { class: "poll-q" }, renderRich(poll.question, poll.question_entities)),
      h("div", { class: "poll-kind" }, kind));
    const total = poll.total_voter_count || 0;
    const correct = new Set(poll.correct_option_ids || (poll.correct_option_id !== undefined ? [poll.correct_option_id] : []));

    if (showResults) {
      const results = h("div", { class: "poll-opts" });
      poll.options.forEach((option, index) => {
        const pct = total ? Math.round((100 * option.voter_count) / total) : 0;
        const chosen = mine?.includes(index);
        const right = quiz && correct.has(index);
        const wrong = quiz && chosen && !right;
        const bar = h("div", { class: `bar${right ? " right" : wrong ? " wrong" : ""}` });
        bar.style.width = `${Math.max(pct, 2)}%`; // CSSOM, allowed by the page's CSP (style attributes are not)
        results.append(h("div", { class: "poll-res" },
          h("span", { class: "pct" }, `${pct}%`),
          h("span", { class: "opt-text" },
            right ? h("span", { class: "mark-right", "aria-label": "✓" }, "✓") : null,
            wrong ? h("span", { class: "mark-wrong", "aria-label": "✗" }, "✗") : null,
            renderRich(option.text, option.text_entities), chosen && !quiz ? " ✔" : null),
          bar));
      });
      card.append(results);
      if (quiz && poll.explanation && mine) {
        card.append(h("div", { class: "poll-expl" }, "💡 ", renderRich(poll.explanation, poll.explanation_entities)));
      }
    } else {
      const picked = new Set();
      const options = h("div", { class: "poll-opts" });
      poll.options.forEach((option, index) => {
        options.append(h("button", {
          type: "button", class: "poll-opt", "aria-pressed": poll.allows_multiple_answers ? "false" : null,
          onclick: (event) => {
            if (!poll.allows_multiple_answers) {
              vote(view, [index]);
              return;
            }
            // several answers: toggle, then send with the Vote button
            if (picked.has(index)) picked.delete(index);
            else picked.add(index);
            event.currentTarget.setAttribute("aria-pressed", String(picked.has(index)));
          },
        }, h("span", { class: "box", "aria-hidden": "true" }), renderRich(option.text, option.text_entities, false)));
      });
      card.append(options);
      if (poll.allows_multiple_answers) {
        card.append(h("button", {
          type: "button", class: "btn primary btn-vote",
          onclick: () => picked.size && vote(view, [...picked].sort()),
        }, t("vote")));
      }
    }
    const foot = h("div", { class: "poll-foot" }, h("span", {}, t("votes", total)));
    if (mine?.length && poll.allows_revoting && !poll.is_closed) {
      foot.append(h("button", { type: "button", class: "link-btn", onclick: () => vote(view, []) }, t("retract")));
    }
    card.append(foot);
    return card;
  }

  async function vote(view, optionIds) {
    const key = `${state.me.id}:${view.poll.id}`;
    try {
      await api(`${API}/polls/${view.poll.id}/answers`, { method: "POST", body: { user_id: state.me.id, option_ids: optionIds } });
      state.votes.set(key, optionIds);
      saveVotes();
    } catch (error) {
      toast(error.message, { error: true });
    }
    // Re-render now with what we know; the vote's change event brings the new counts right after.
    if (state.chat?.views.has(view.message_id)) placeMessage(state.chat, state.chat.views.get(view.message_id));
    refreshOpenChat();
  }

  // ---------------------------------------------------------------- reply keyboard
  function renderReplyKeyboard() {
    const markup = state.chat?.replyKeyboard;
    const rows = markup?.keyboard || [];
    els.kbToggle.hidden = rows.length === 0;
    const forced = state.replyTo?.reply_keyboard?.force_reply ? state.replyTo.reply_keyboard : null;
    els.text.placeholder = forced?.input_field_placeholder || markup?.input_field_placeholder || t("placeholder");
    els.replyKb.hidden = rows.length === 0 || !state.keyboardShown;
    els.kbToggle.setAttribute("aria-pressed", String(state.keyboardShown));
    els.replyKb.replaceChildren(...rows.map((row) => h("div", { class: "reply-kb-row" }, row.map((button) => {
      const spec = typeof button === "string" ? { text: button } : button;
      return h("button", { type: "button", class: "reply-kb-btn", onclick: () => pressReplyButton(spec) }, spec.text);
    }))));
  }

  function pressReplyButton(button) {
    if (button.request_location) {
      openLocationDialog(t("requestLocation"));
      return;
    }
    if (button.request_contact || button.request_poll || button.request_users || button.request_chat || button.web_app) {
      toast(t("unsupported"));
      return;
    }
    sendText(button.text);
  }

  // ---------------------------------------------------------------- sending
  async function sendText(text) {
    await state.switching;
    if (!text.trim() || !state.chat) return false;
    const body = { user_id: state.me.id, text };
    if (state.replyTo) body.reply_to_message_id = state.replyTo.message_id;
    try {
      await api(`${API}/chats/${state.chat.id}/messages`, { method: "POST", body });
    } catch (error) {
      toast(error.message, { error: true });
      return false;
    }
    setReplyTo(null);
    await refreshOpenChat();
    scrollToBottom();
    return true;
  }

  function setReplyTo(view) {
    state.replyTo = view;
    renderReplyPreview();
    renderReplyKeyboard(); // the placeholder may come from a force_reply
    if (view) els.text.focus();
  }

  function renderReplyPreview() {
    const view = state.replyTo;
    els.replyPreview.hidden = !view;
    if (!view) return;
    const message = view.message;
    els.replyPreviewText.replaceChildren(h("b", {}, `${t("reply")} ${senderName(message)}: `),
      message.text || message.caption || (view.photo_url ? t("photo") : view.poll ? view.poll.question : "…"));
  }

  // ---------------------------------------------------------------- commands ("/" menu and hints)
  function commandName(command) {
    // In groups Telegram addresses the command to the bot, which also gets it past group privacy mode.
    return isGroup(state.chat?.id) ? `/${command}@${BOT.username}` : `/${command}`;
  }

  function showCommands(filter = "") {
    const wanted = filter.replace(/^\//, "").toLowerCase();
    const items = state.commands.filter((c) => c.command.startsWith(wanted));
    if (!items.length && filter) {
      hideCommands();
      return;
    }
    els.cmdMenu.replaceChildren(...(items.length ? items.map((c) => h("button", {
      type: "button", class: "cmd-item",
      onclick: () => {
        hideCommands();
        els.text.value = "";
        sendText(commandName(c.command));
      },
    }, h("b", {}, `/${c.command}`), h("span", {}, c.description))) : [h("p", { class: "hint" }, t("noCommands"))]));
    els.cmdMenu.hidden = false;
    els.cmdBtn.setAttribute("aria-expanded", "true");
  }

  function hideCommands() {
    els.cmdMenu.hidden = true;
    els.cmdBtn.setAttribute("aria-expanded", "false");
  }

  // ---------------------------------------------------------------- photo and location dialogs
  let photoFile = null;
  let previewUrl = null;

  function onPhotoChosen() {
    const file = els.photoInput.files[0];
    if (!file) return;
    photoFile = file;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    $("photo-preview").src = previewUrl;
    $("photo-caption").value = els.text.value.trim();
    $("photo-dialog").showModal();
  }

  async function sendPhoto(event) {
    event.preventDefault();
    if (!photoFile || !state.chat) return;
    const form = new FormData();
    form.append("photo", photoFile, photoFile.name || "photo.png");
    form.append("user_id", String(state.me.id));
    const caption = $("photo-caption").value.trim();
    if (caption) form.append("caption", caption);
    $("photo-dialog").close();
    els.photoInput.value = "";
    if (caption === els.text.value.trim()) els.text.value = "";
    try {
      await api(`${API}/chats/${state.chat.id}/photos`, { method: "POST", form });
      await refreshOpenChat();
      scrollToBottom();
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  function openLocationDialog(title) {
    $("location-dialog-title").textContent = title || t("sendLocation");
    if (!$("lat").value) setPin((MAP.north + MAP.south) / 2, (MAP.west + MAP.east) / 2);
    $("location-dialog").showModal();
  }

  function setPin(lat, lon) {
    $("lat").value = lat.toFixed(6);
    $("lon").value = lon.toFixed(6);
    movePin();
  }

  function movePin() {
    const lat = Number($("lat").value);
    const lon = Number($("lon").value);
    const inside = lat <= MAP.north && lat >= MAP.south && lon >= MAP.west && lon <= MAP.east;
    const x = ((lon - MAP.west) / (MAP.east - MAP.west)) * MAP.width;
    const y = ((MAP.north - lat) / (MAP.north - MAP.south)) * MAP.height;
    const pin = $("map-pin");
    pin.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    pin.setAttribute("visibility", inside ? "visible" : "hidden");
  }

  function onMapClick(event) {
    const svg = event.currentTarget;
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const local = point.matrixTransform(svg.getScreenCTM().inverse()); // viewBox units, whatever the rendered size
    setPin(MAP.north - (local.y / MAP.height) * (MAP.north - MAP.south), MAP.west + (local.x / MAP.width) * (MAP.east - MAP.west));
  }

  async function sendLocation(event) {
    event.preventDefault();
    const latitude = Number($("lat").value);
    const longitude = Number($("lon").value);
    if (!$("location-form").reportValidity()) return;
    $("location-dialog").close();
    try {
      await api(`${API}/chats/${state.chat.id}/locations`, { method: "POST", body: { user_id: state.me.id, latitude, longitude } });
      await refreshOpenChat();
      scrollToBottom();
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  // ---------------------------------------------------------------- new resident
  async function openPersonDialog() {
    const groups = (await api(`${API}/chats`)).filter((c) => isGroup(c.id));
    $("new-groups").replaceChildren(h("legend", {}, t("joinGroups")), ...groups.map((g, index) => h("label", {},
      h("input", { type: "checkbox", name: "group", value: g.id, checked: index === 0 }), g.title)));
    $("new-groups").hidden = groups.length === 0;
    $("new-name").value = "";
    $("person-dialog").showModal();
  }

  async function createPerson(event) {
    event.preventDefault();
    const name = $("new-name").value.trim();
    if (!name) return;
    const languageCode = $("new-lang").value;
    const groups = [...document.querySelectorAll('#new-groups input[name="group"]:checked')].map((i) => Number(i.value));
    $("person-dialog").close();
    try {
      const user = await api(`${API}/users`, { method: "POST", body: { first_name: name, language_code: languageCode } });
      // Joining a group is a service message the bot sees: it greets newcomers with a private-chat deep link.
      for (const groupId of groups) await api(`${API}/chats/${groupId}/members`, { method: "POST", body: { user_id: user.id } });
      await loadPeople();
      toast(t("created", name));
      await switchPerson(user.id);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  // ---------------------------------------------------------------- live updates
  let listTimer = null;
  function refreshListSoon() {
    // Several events often arrive together (a reply and an edit): one list reload for all of them.
    clearTimeout(listTimer);
    listTimer = setTimeout(() => loadChats().catch(() => {}), 120);
  }

  function handleEvents(events) {
    let openChanged = false;
    let listChanged = false;
    for (const event of events) {
      if (event.kind === "callback_answer" && event.data) {
        const id = event.data.callback_query_id;
        const el = state.pending.get(id);
        if (el) {
          state.pending.delete(id);
          showCallbackAnswer(el, event.data);
        } else if (id) {
          state.answers.set(id, event.data);
          if (state.answers.size > 200) state.answers.delete(state.answers.keys().next().value);
        }
        continue;
      }
      // Private chats are per bot: only the default bot's chat with this person is shown.
      const privateOther = event.chat_id > 0 && (event.chat_id !== state.me?.id || event.bot_id !== BOT.id);
      if (privateOther) continue;
      if (state.chat && event.chat_id === state.chat.id) openChanged = true;
      listChanged = true;
    }
    if (openChanged) refreshOpenChat();
    if (listChanged) refreshListSoon();
  }

  /** The emulator's long poll: one request waits until something changes, so an idle page costs nothing. */
  async function pollEvents() {
    for (;;) {
      try {
        const result = await api(`${API}/events?after=${state.eventsVersion}&timeout=25`);
        setSubtitle(false);
        if (result.version < state.eventsVersion) {
          // The sandbox was restarted (versions begin again): a new page load picks up the new run.
          location.reload();
          return;
        }
        state.eventsVersion = result.version;
        handleEvents(result.events);
      } catch {
        setSubtitle(true);
        await sleep(2000);
      }
    }
  }

  // ---------------------------------------------------------------- wiring
  function autosize() {
    els.text.style.height = "auto";
    els.text.style.height = `${Math.min(els.text.scrollHeight, 140)}px`;
  }

  function wire() {
    els.person.addEventListener("change", () => switchPerson(Number(els.person.value)));
    $("new-person").addEventListener("click", openPersonDialog);
    $("person-form").addEventListener("submit", createPerson);
    $("photo-form").addEventListener("submit", sendPhoto);
    $("location-form").addEventListener("submit", sendLocation);
    $("map").addEventListener("click", onMapClick);
    $("lat").addEventListener("input", movePin);
    $("lon").addEventListener("input", movePin);
    for (const button of document.querySelectorAll("dialog [data-close]")) {
      button.addEventListener("click", () => button.closest("dialog").close("cancel"));
    }
    $("back").addEventListener("click", () => els.app.classList.remove("chat-open"));
    $("attach").addEventListener("click", () => els.photoInput.click());
    els.photoInput.addEventListener("change", onPhotoChosen);
    $("locate").addEventListener("click", () => openLocationDialog());
    $("reply-cancel").addEventListener("click", () => setReplyTo(null));
    els.kbToggle.addEventListener("click", () => {
      state.keyboardShown = !state.keyboardShown;
      renderReplyKeyboard();
    });
    els.cmdBtn.addEventListener("click", () => (els.cmdMenu.hidden ? showCommands() : hideCommands()));

    els.composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = els.text.value;
      if (!text.trim()) return;
      els.text.value = "";
      autosize();
      hideCommands();
      if (!(await sendText(text))) els.text.value = text; // keep what was typed if sending failed
    });
    els.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        // isComposing: Enter also confirms a Chinese IME candidate, which must not send the message
        event.preventDefault();
        els.composer.requestSubmit();
      } else if (event.key === "Escape") {
        hideCommands();
      }
    });
    els.text.addEventListener("input", () => {
      autosize();
      const value = els.text.value;
      if (/^\/[a-z0-9_]*$/i.test(value)) showCommands(value);
      else hideCommands();
    });

    // Links and commands inside message text (built by renderRich): act like a Telegram client.
    els.messages.addEventListener("click", (event) => {
      const command = event.target.closest("[data-command]");
      if (command) {
        const [name, addressee] = command.dataset.command.slice(1).split("@");
        sendText(addressee ? command.dataset.command : commandName(name));
        return;
      }
      const spoiler = event.target.closest(".spoiler");
      if (spoiler) spoiler.classList.add("revealed");
      const quote = event.target.closest("blockquote.expandable");
      if (quote) quote.classList.toggle("open");
      const anchor = event.target.closest(".text a[href]");
      if (anchor && startPayload(anchor.href) !== null) {
        event.preventDefault();
        openUrl(anchor.href);
      }
    });
    document.addEventListener("click", (event) => {
      if (!els.cmdMenu.hidden && !event.target.closest("#cmd-menu, #cmd-btn, #text")) hideCommands();
    });
  }

  async function start() {
    applyI18n();
    wire();
    await loadPeople();
    // Start the event stream from "now": after= beyond any version answers at once with the current version.
    const now = await api(`${API}/events?after=${Number.MAX_SAFE_INTEGER}&timeout=0`);
    state.eventsVersion = now.version;
    const [hashPerson, hashChat] = location.hash.slice(1).split("/").map(Number);
    const saved = Number(localStorage.getItem("sicheng.sandbox.person"));
    const id = [hashPerson, saved].find((candidate) => candidate && person(candidate)) || state.personas[0]?.id;
    await switchPerson(id, hashChat);
    document.body.dataset.ready = "true"; // for tests and screenshots: the first chat is on screen
    pollEvents();
  }

  start().catch((error) => toast(String(error.message || error), { error: true, ms: 8000 }));
})();

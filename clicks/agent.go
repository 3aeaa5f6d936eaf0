package clicks

import (
	"bytes"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// Agent is the class of a user agent.
type Agent struct {
	// Browser is the browser family ("Chrome", "Firefox", ...) or
	// UnknownKey.
	Browser string
	// OS is the operating system ("Windows", "iOS", ...) or UnknownKey.
	OS string
	// Device is "Desktop", "Mobile", "Tablet", "TV", "Bot" or UnknownKey.
	Device string
	// Bot is true for crawlers, link previewers, headless browsers and
	// HTTP tools (see the package doc).
	Bot bool
	// UAHash is the (unkeyed) xxhash64 of the user agent string, the
	// user agent's part of the visitor hash (VisitorHasher.SumHash).
	UAHash uint64
}

// UnknownKey names a browser, OS or device the parser did not recognise.
const UnknownKey = "(unknown)"

// BotMarkers are the lower-case substrings that make a user agent a bot
// beyond the parser's own bot class. They cover search crawlers, link
// previewers, monitoring, headless browsers and HTTP tools and libraries.
var BotMarkers = []string{
	"bot", "crawl", "spider", "slurp", "scan", "fetch", "monitor", "preview",
	"googlebot", "bingbot", "yandex.com/bots", "baiduspider", "duckduckbot",
	"facebookexternalhit", "facebookcatalog", "whatsapp", "telegrambot",
	"slackbot", "discordbot", "twitterbot", "linkedinbot", "skypeuripreview",
	"embedly", "pinterest", "redditbot", "applebot", "petalbot", "semrush",
	"ahrefs", "mj12bot", "dotbot", "headlesschrome", "phantomjs", "lighthouse",
	"curl/", "wget/", "python-requests", "python-urllib", "python-httpx",
	"aiohttp", "go-http-client", "java/", "okhttp", "apache-httpclient",
	"libwww-perl", "httpie", "node-fetch", "axios/", "undici", "postmanruntime",
	"insomnia", "powershell", "winhttp", "http_request", "ruby",
}

// IsBotAgent reports whether userAgent names a bot by BotMarkers (the
// parser's bot class is added by Classifier). An empty user agent is a bot.
func IsBotAgent(userAgent []byte) bool {
	if len(bytes.TrimSpace(userAgent)) == 0 {
		return true
	}
	lower := bytes.ToLower(userAgent)
	for _, m := range BotMarkers {
		if bytes.Contains(lower, []byte(m)) {
			return true
		}
	}
	return false
}

// Cache sizing of a Classifier.
const (
	// DefaultClassifierCache is the default number of user agents a
	// Classifier remembers.
	DefaultClassifierCache = 8192
	// maxCachedAgentLen: longer user agents are classified every time
	// rather than filling the cache with junk.
	maxCachedAgentLen = 512
)

// Classifier classes user agents, caching the result per user agent
// string. The cache is a fixed array of slots indexed by the user agent's
// hash, each an atomic pointer to an immutable entry: a lookup takes no
// lock, and a new user agent replaces whatever held its slot, so the cache
// is bounded. It is safe for concurrent use.
type Classifier struct {
	parser *useragent.Parser
	mask   uint64
	slots  []atomic.Pointer[agentEntry]
}

type agentEntry struct {
	ua    string
	agent Agent
}

// NewClassifier returns a classifier that caches about size user agents
// (rounded up to a power of two; DefaultClassifierCache when size <= 0).
// Building the parser's trie takes some milliseconds and is done once per
// process.
func NewClassifier(size int) *Classifier {
	if size <= 0 {
		size = DefaultClassifierCache
	}
	n := 1
	for n < size {
		n <<= 1
	}
	return &Classifier{parser: useragent.NewParser(), mask: uint64(n - 1), slots: make([]atomic.Pointer[agentEntry], n)}
}

// Classify returns the class of userAgent, with Agent.UAHash set. It does
// not allocate when the user agent is cached.
func (c *Classifier) Classify(userAgent []byte) Agent {
	h := xxhash.Sum64(userAgent)
	if len(userAgent) > maxCachedAgentLen {
		return c.parse(userAgent, h)
	}
	slot := &c.slots[h&c.mask]
	if e := slot.Load(); e != nil && e.agent.UAHash == h && e.ua == string(userAgent) {
		return e.agent
	}
	a := c.parse(userAgent, h)
	slot.Store(&agentEntry{ua: string(userAgent), agent: a})
	return a
}

func (c *Classifier) parse(userAgent []byte, h uint64) Agent {
	ua := c.parser.Parse(string(userAgent))
	a := Agent{
		Browser: orUnknown(string(ua.Browser())),
		OS:      orUnknown(string(ua.OS())),
		Device:  orUnknown(string(ua.Device())),
		UAHash:  h,
	}
	a.Bot = ua.IsBot() || IsBotAgent(userAgent)
	if a.Bot {
		a.Device = string(agents.DeviceBot)
	}
	return a
}

func orUnknown(s string) string {
	if s == "" {
		return UnknownKey
	}
	return s
}

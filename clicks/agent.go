package clicks

import (
	"bytes"
	"sync"

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
	classifierShards = 16
	// DefaultClassifierCache is the default number of user agents a
	// Classifier remembers.
	DefaultClassifierCache = 8192
	// maxCachedAgentLen: longer user agents are classified every time
	// rather than filling the cache with junk.
	maxCachedAgentLen = 512
)

// Classifier classes user agents, caching the result per user agent
// string in a bounded map. It is safe for concurrent use.
type Classifier struct {
	parser *useragent.Parser
	per    int
	shards [classifierShards]classifierShard
}

type classifierShard struct {
	mu sync.RWMutex
	m  map[string]Agent
	_  [32]byte // keep shards on separate cache lines
}

// NewClassifier returns a classifier that caches up to size user agents
// (DefaultClassifierCache when size <= 0). Building the parser's trie takes
// some milliseconds and is done once per process.
func NewClassifier(size int) *Classifier {
	if size <= 0 {
		size = DefaultClassifierCache
	}
	c := &Classifier{parser: useragent.NewParser(), per: max(1, size/classifierShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]Agent, c.per)
	}
	return c
}

// Classify returns the class of userAgent. It does not allocate when the
// user agent is cached.
func (c *Classifier) Classify(userAgent []byte) Agent {
	if len(userAgent) > maxCachedAgentLen {
		return c.parse(userAgent)
	}
	s := &c.shards[xxhash.Sum64(userAgent)%classifierShards]
	s.mu.RLock()
	a, ok := s.m[string(userAgent)]
	s.mu.RUnlock()
	if ok {
		return a
	}
	a = c.parse(userAgent)
	s.mu.Lock()
	if len(s.m) >= c.per {
		// Evict one entry: map iteration starts at a random place, so
		// this is a random eviction.
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[string(userAgent)] = a
	s.mu.Unlock()
	return a
}

func (c *Classifier) parse(userAgent []byte) Agent {
	ua := c.parser.Parse(string(userAgent))
	a := Agent{
		Browser: orUnknown(string(ua.Browser())),
		OS:      orUnknown(string(ua.OS())),
		Device:  orUnknown(string(ua.Device())),
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

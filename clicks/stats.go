package clicks

// Stats is a code's click statistics over a range of UTC days, as the
// shard answers them (clickstore.Query) and the router shows them. Clicks,
// uniques and the tallies count human clicks only; bot clicks are counted
// in Bots.
type Stats struct {
	Code string `json:"code"`
	// From and To are the first and last day of the range, YYYY-MM-DD.
	From string `json:"from"`
	To   string `json:"to"`
	// TotalClicks and TotalBots count every click ever recorded.
	TotalClicks uint64 `json:"total_clicks"`
	TotalBots   uint64 `json:"total_bots"`
	// Clicks, Bots and Uniques are over the range; Uniques is a
	// HyperLogLog estimate (standard error about 1.6 %).
	Clicks  uint64 `json:"clicks"`
	Bots    uint64 `json:"bots"`
	Uniques uint64 `json:"uniques"`
	// Days has one entry per day of the range, oldest first.
	Days []DayStats `json:"days"`
	// Referrers, Browsers, OSes and Devices are the largest counts over
	// the range, largest first (at most MaxTallyKeys, the rest under
	// OtherKey).
	Referrers []Count `json:"referrers"`
	Browsers  []Count `json:"browsers"`
	OSes      []Count `json:"oses"`
	Devices   []Count `json:"devices"`
}

// DayStats is one day of Stats.
type DayStats struct {
	Date    string `json:"date"`
	Clicks  uint64 `json:"clicks"`
	Bots    uint64 `json:"bots"`
	Uniques uint64 `json:"uniques"`
}

//go:build refdata

package perplexity

func init() {
	unseenAVX512Types = append(unseenAVX512Types, "Q6_K", "Q5_K_M", "Q4_0")
}

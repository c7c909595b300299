package mlx

import "github.com/quantbridge/quantbridge/internal/pyjson"

// configEncoder reproduces Python's json.dump(obj, f, indent=4) (the mlx-lm
// save_config layout): ", " / ": " separators with newlines, ensure_ascii
// escaping, Python's repr for floats, no trailing newline; integral numbers
// are integers except under floatKeys.
var configEncoder = pyjson.Encoder{Indent: "    ", AsFloat: func(key string) bool { return floatKeys[key] }}

// floatKeys are config keys whose integral values Python wrote as floats
// ("attention_dropout": 0.0, "rope_theta": 10000.0). A float64 decoded by
// encoding/json no longer says whether the source spelled 10000 or
// 10000.0; for these keys the writer restores the float spelling, for every
// other key an integral number is written as an integer.
var floatKeys = map[string]bool{
	"attention_dropout": true, "hidden_dropout": true, "embd_pdrop": true, "resid_pdrop": true,
	"attn_pdrop": true, "dropout": true, "rope_theta": true, "rms_norm_eps": true,
	"layer_norm_eps": true, "layer_norm_epsilon": true, "initializer_range": true,
	"factor": true, "low_freq_factor": true, "high_freq_factor": true,
	"partial_rotary_factor": true, "attn_factor": true, "beta_fast": true, "beta_slow": true,
	"mscale": true, "mscale_all_dim": true, "extrapolation_factor": true,
	"router_aux_loss_coef": true, "temperature": true, "top_p": true,
	"repetition_penalty": true, "final_logit_softcapping": true,
	"attn_logit_softcapping": true, "rope_local_base_freq": true,
}

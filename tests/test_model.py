import torch

from models.gpt import GPT, GPTConfig


def _model(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, **kw))


def test_forward_shapes_and_initial_loss_near_uniform():
    model = _model()
    x = torch.randint(0, 50, (3, 16))
    assert model(x).shape == (3, 16, 50)
    loss = model.loss(x, x)
    assert abs(loss.item() - torch.log(torch.tensor(50.0)).item()) < 0.5


def test_causality_future_tokens_do_not_change_past_logits():
    model = _model().eval()
    x = torch.randint(0, 50, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 50
    assert torch.allclose(model(x)[0, :10], model(y)[0, :10], atol=1e-5)
    assert not torch.allclose(model(x)[0, 10:], model(y)[0, 10:])


def test_weights_are_tied():
    model = _model()
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()


def test_a_few_steps_fit_a_repeating_sequence():
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.arange(17).remainder(5).unsqueeze(0).repeat(4, 1)
    first = model.loss(x[:, :-1], x[:, 1:]).item()
    for _ in range(30):
        opt.zero_grad()
        loss = model.loss(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
    assert loss.item() < first / 4


def test_generate_extends_and_respects_block_size():
    model = _model().eval()
    gen = torch.Generator().manual_seed(0)
    out = model.generate(torch.zeros(1, 3, dtype=torch.long), max_new_tokens=20, top_k=5, generator=gen)
    assert out.shape == (1, 23)
    again = model.generate(torch.zeros(1, 3, dtype=torch.long), 20, top_k=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_state_dict_loads_with_weights_only(tmp_path):
    model = _model()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = _model()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = torch.randint(0, 50, (1, 8))
    assert torch.equal(model(x), other(x))

"""mmdet's own tools/train.py trains a config of ours; tools/test.py (which
hands over to mmdet's) dumps predictions in mmdet's format and paints them.
"""
import os.path as osp
import pickle
import subprocess
import sys

from det_helpers import REPO, RETINA_DIST


def run(cmd, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    output = result.stdout[-2000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    return result


def test_mmdet_train_and_test_scripts_run_our_config(make_det_cfg, tmp_path):
    import mmdet
    tools = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    cfg = make_det_cfg(RETINA_DIST)
    config = str(tmp_path / 'retinanet_dist.py')
    cfg.dump(config)
    run([sys.executable, osp.join(tools, 'train.py'), config], tmp_path)
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)

    preds = str(tmp_path / 'preds.pkl')
    run([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config, ckpt, '--out', preds,
        '--show-dir', 'painted'
    ], tmp_path)
    with open(preds, 'rb') as f:
        dumped = pickle.load(f)
    # mmdet's DumpDetResults: one dict per val image, boxes in pixels.
    assert len(dumped) == 2
    assert dumped[0]['pred_instances']['bboxes'].shape[1] == 4
    painted = list((tmp_path / 'work').glob('*/painted/*.png'))
    assert len(painted) == 2
